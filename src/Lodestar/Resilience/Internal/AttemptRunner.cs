using System.Diagnostics;
using System.Runtime.CompilerServices;
using Lodestar.Diagnostics;
using Lodestar.Diagnostics.Internal;
using Lodestar.Health.Internal;
using Lodestar.Http.Internal;
using Lodestar.LoadBalancing;
using Microsoft.Extensions.Logging;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// Sends one attempt to one endpoint: rewrites the URI to the endpoint, applies the per-try timeout, counts the
/// attempt in flight on the endpoint's state, and reports the outcome to the health stage, the hedging latency
/// tracker (first attempts only), metrics and the trace. Never throws: failures come back as an <see cref="AttemptResult"/>.
/// </summary>
internal sealed partial class AttemptRunner
{
    private readonly Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> _send;
    private readonly TimeProvider _timeProvider;
    private readonly LodestarMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ConnectionRetirer? _retirer;

    /// <param name="send">Sends a request to the transport (the inner handler).</param>
    /// <param name="timeProvider">The clock for per-try timeouts and latencies.</param>
    /// <param name="metrics">The instruments.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="retirer">Connection retirement, told when an attempt uses an endpoint that just left its set.</param>
    public AttemptRunner(Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> send, TimeProvider timeProvider, LodestarMetrics metrics,
        ILogger logger, ConnectionRetirer? retirer)
    {
        _send = send;
        _timeProvider = timeProvider;
        _metrics = metrics;
        _logger = logger;
        _retirer = retirer;
    }

    public TimeProvider TimeProvider => _timeProvider;

    /// <summary>Sends <paramref name="request"/> to <paramref name="state"/>'s endpoint.</summary>
    /// <param name="request">The request to send (the original or, for a hedge, a clone).</param>
    /// <param name="context">The logical request.</param>
    /// <param name="state">The endpoint, admitted by its breaker.</param>
    /// <param name="ticket">The breaker's admission ticket.</param>
    /// <param name="attempt">The attempt's number, from 1.</param>
    /// <param name="cancellationToken">Ends the attempt without a verdict on the endpoint (caller, deadline, winning hedge).</param>
    /// <remarks>
    /// A <see cref="ValueTask{TResult}"/> from a pooled builder: an attempt that completes asynchronously (every real one)
    /// reuses a state-machine box instead of allocating one per attempt; the caller awaits it exactly once. The first
    /// attempt of a request is begun, started, awaited and ended by the handler itself (<see cref="Begin"/>,
    /// <see cref="Start"/>, <see cref="End"/>), which saves a state machine per request.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<AttemptResult> SendAsync(HttpRequestMessage request, RequestContext context, EndpointState state, long ticket, int attempt,
        CancellationToken cancellationToken)
    {
        var scope = Begin(request, context, state, ticket, attempt, cancellationToken);
        var sending = Start(request, scope);
        await ((Task)sending).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return End(request, context, ref scope, sending);
    }

    /// <summary>
    /// Starts an attempt: rewrites the URI to the endpoint, counts the attempt, starts its activity and per-try timeout,
    /// and counts it in flight on the endpoint. Every attempt begun must be passed to <see cref="End"/>.
    /// </summary>
    public AttemptScope Begin(HttpRequestMessage request, RequestContext context, EndpointState state, long ticket, int attempt,
        CancellationToken cancellationToken)
    {
        var route = context.Route;
        var endpoint = state.Endpoint;
        request.RequestUri = LogicalUri.Rewrite(context.Logical, state);
        var method = HttpSemanticConventions.Method(request.Method);
        context.Tally.OnAttempt();
        var activity = LodestarDiagnostics.ActivitySource.StartActivity("lodestar.attempt", ActivityKind.Internal);
        if (activity is not null)
        {
            activity.SetTag("lodestar.service", route.ServiceName);
            activity.SetTag("lodestar.endpoint", endpoint.Address);
            activity.SetTag("lodestar.attempt", attempt);
            activity.SetTag(HttpSemanticConventions.RequestMethod, method);
            if (ReferenceEquals(method, HttpSemanticConventions.OtherMethod))
            {
                activity.SetTag(HttpSemanticConventions.RequestMethodOriginal, request.Method.Method);
            }

            activity.SetTag(HttpSemanticConventions.ServerAddress, endpoint.Host);
            activity.SetTag(HttpSemanticConventions.ServerPort, endpoint.PortTag);
            activity.SetTag(HttpSemanticConventions.UrlScheme, request.RequestUri.Scheme);
            if (attempt > 1)
            {
                // The conventions' ordinal of the resend: absent on the first attempt, 1 on the first retry or hedge.
                activity.SetTag(HttpSemanticConventions.ResendCount, HttpSemanticConventions.Box(attempt - 1));
            }
        }

        CancellationTokenSource? tryTimeout = null;
        CancellationTokenSource? tryLinked = null;
        if (context.PerTryTimeout is { } perTry)
        {
            tryTimeout = new CancellationTokenSource(perTry, _timeProvider);
            tryLinked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, tryTimeout.Token);
        }

        var started = _timeProvider.GetTimestamp();
        var countedLoad = state.OnRequestStarted();
        if (state.Departed)
        {
            // Picked from a picker built just before the endpoint left: keep retirement from closing its connection under it.
            _retirer?.Revive(state);
        }

        return new AttemptScope(state, ticket, attempt, method, activity, tryTimeout, tryLinked, cancellationToken, started, countedLoad);
    }

    /// <summary>
    /// Sends a begun attempt to the transport and gives back the caller's current activity (the attempt's parent), as
    /// the end of an async method would: the transport runs under the attempt's activity, and what the caller starts
    /// next does not. A handler that throws instead of returning a task gives a faulted one. Await the task without
    /// throwing (<see cref="ConfigureAwaitOptions.SuppressThrowing"/>), then pass it to <see cref="End"/>.
    /// </summary>
    public Task<HttpResponseMessage> Start(HttpRequestMessage request, in AttemptScope scope)
    {
        Task<HttpResponseMessage> sending;
        try
        {
            sending = _send(request, scope.Token);
        }
        catch (Exception ex)
        {
            sending = Task.FromException<HttpResponseMessage>(ex);
        }

        if (scope.Activity is { } activity)
        {
            Activity.Current = activity.Parent;
        }

        return sending;
    }

    /// <summary>Ends a begun attempt once its task from <see cref="Start"/> completes, for a strategy that goes on meanwhile.</summary>
    public async Task<AttemptResult> EndAsync(HttpRequestMessage request, RequestContext context, AttemptScope scope, Task<HttpResponseMessage> sending)
    {
        await ((Task)sending).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return End(request, context, ref scope, sending);
    }

    /// <summary>
    /// Ends a begun attempt whose task from <see cref="Start"/> has completed (reading it does not block): reports the
    /// response or what the transport threw to the endpoint's state, the health stage, the latency tracker (first
    /// attempts only), metrics, the trace and the log. Never throws for the attempt's outcome: a failure comes back as
    /// an <see cref="AttemptResult"/>.
    /// </summary>
    public AttemptResult End(HttpRequestMessage request, RequestContext context, ref AttemptScope scope, Task<HttpResponseMessage> completed)
    {
        Debug.Assert(completed.IsCompleted, "The attempt's task has completed.");
        try
        {
            Exception error;
            try
            {
                if (completed.GetAwaiter().GetResult() is { } response)
                {
                    return Succeeded(request, context, scope, response);
                }

                // A handler below that returned no response and threw nothing fails the attempt, as a transport error would.
                error = new InvalidOperationException($"The handler below Lodestar returned no response for the attempt to {scope.State.Endpoint.Address}.");
            }
            catch (Exception ex)
            {
                error = ex;
            }

            return Failed(request, context, scope, error);
        }
        finally
        {
            scope.Dispose();
        }
    }

    private AttemptResult Succeeded(HttpRequestMessage request, RequestContext context, in AttemptScope scope, HttpResponseMessage response)
    {
        var route = context.Route;
        var state = scope.State;
        var endpoint = state.Endpoint;
        var activity = scope.Activity;
        var elapsed = _timeProvider.GetElapsedTime(scope.Started);
        var status = (int)response.StatusCode;
        var outcome = FailureClassifier.Classify(status);
        var deferred = false;
        if (outcome == AttemptOutcome.Success && FailureClassifier.IsGrpc(request, response))
        {
            // gRPC answers 200 whatever happens: the outcome is grpc-status, in the headers of a Trailers-Only
            // response, otherwise in the trailers, which the health stage hears about when the body ends.
            if (FailureClassifier.ClassifyGrpcHeaders(response, context.Options.Grpc) is { } grpcOutcome)
            {
                outcome = grpcOutcome;
            }
            else
            {
                deferred = true;
                GrpcTrailers.Watch(response, context.Options.Grpc, static (trailerOutcome, s) =>
                {
                    var (stage, endpoint, admission) = ((HealthStage, EndpointState, long))s!;
                    if (trailerOutcome is { } result)
                    {
                        stage.OnAttemptCompleted(endpoint, admission, result);
                    }
                    else
                    {
                        HealthStage.OnAttemptAbandoned(endpoint, admission);
                    }
                }, (route.Stage, state, scope.Ticket));
            }
        }

        var success = outcome == AttemptOutcome.Success;
        state.OnRequestCompleted(success, elapsed, scope.CountedLoad);
        if (!deferred)
        {
            route.Stage.OnAttemptCompleted(state, scope.Ticket, outcome);
        }

        if (success && scope.Number == 1)
        {
            // First attempts only: a hedge's or a retry's latency says nothing about when to hedge a first attempt.
            route.Resilience.Latency?.Record(elapsed);
        }

        var label = success ? "success" : "server_error";
        var errorType = HttpSemanticConventions.StatusErrorType(status);
        _metrics.RecordAttempt(route.ServiceName, endpoint, new AttemptTags(scope.Number, label, scope.Method, request.RequestUri!.Scheme, status, errorType), elapsed.TotalSeconds);
        if (activity is not null)
        {
            activity.SetTag("lodestar.outcome", label);
            activity.SetTag(HttpSemanticConventions.ResponseStatusCode, HttpSemanticConventions.Box(status));
            if (errorType is not null)
            {
                // HTTP client spans are errors from 4xx on; the status code says it all, so no description.
                activity.SetTag(HttpSemanticConventions.ErrorType, errorType);
                activity.SetStatus(ActivityStatusCode.Error);
            }
        }

        Log.AttemptCompleted(_logger, route.ServiceName, endpoint.Address, scope.Number, status);
        return AttemptResult.FromResponse(state, response);
    }

    private AttemptResult Failed(HttpRequestMessage request, RequestContext context, in AttemptScope scope, Exception ex)
    {
        var route = context.Route;
        var state = scope.State;
        var activity = scope.Activity;
        var cancellationToken = scope.CallerToken;
        var elapsed = _timeProvider.GetElapsedTime(scope.Started);
        var timedOut = scope.TryTimeout is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested;
        var failure = FailureClassifier.Classify(ex, timedOut, abandoned: cancellationToken.IsCancellationRequested);
        if (failure.Outcome is null)
        {
            // Abandoned (a winning hedge, the caller, the deadline): not a failure of the endpoint, and its latency
            // is only known to be at least this long.
            state.OnRequestAbandoned(elapsed, scope.CountedLoad);
        }
        else
        {
            state.OnRequestCompleted(false, elapsed, scope.CountedLoad);
        }

        if (failure.Outcome is { } outcome)
        {
            route.Stage.OnAttemptCompleted(state, scope.Ticket, outcome);
        }
        else
        {
            HealthStage.OnAttemptAbandoned(state, scope.Ticket);
        }

        var label = failure.Reason ?? "error";
        var errorType = failure.Reason ?? HttpSemanticConventions.ExceptionErrorType(ex);
        _metrics.RecordAttempt(route.ServiceName, state.Endpoint, new AttemptTags(scope.Number, label, scope.Method, request.RequestUri!.Scheme, 0, errorType), elapsed.TotalSeconds);
        if (activity is not null)
        {
            activity.SetTag("lodestar.outcome", label);
            activity.SetTag(HttpSemanticConventions.ErrorType, errorType);
            activity.SetStatus(ActivityStatusCode.Error, Discovery.SecretRedactor.Default.Redact(ex.Message));
        }

        return AttemptResult.FromFailure(state, ex, failure, timedOut);
    }

    private static partial class Log
    {
        [LoggerMessage(101, LogLevel.Trace, "Attempt {Attempt} for service {Service} to {Endpoint} returned {StatusCode}.", EventName = "AttemptCompleted")]
        public static partial void AttemptCompleted(ILogger logger, string service, string endpoint, int attempt, int statusCode);
    }
}

/// <summary>One attempt between <see cref="AttemptRunner.Begin"/> and <see cref="AttemptRunner.End"/>; a struct, as the result.</summary>
/// <param name="state">The endpoint the attempt goes to.</param>
/// <param name="ticket">The breaker's admission ticket.</param>
/// <param name="number">The attempt's number, from 1.</param>
/// <param name="method">The request method as the conventions name it.</param>
/// <param name="activity">The attempt's activity, when someone listens.</param>
/// <param name="tryTimeout">The per-try timeout's source, when the attempt has one.</param>
/// <param name="tryLinked">The caller's token linked with the per-try timeout, when the attempt has one.</param>
/// <param name="callerToken">The token that ends the attempt without a verdict on the endpoint.</param>
/// <param name="started">The timestamp the attempt started at.</param>
/// <param name="countedLoad">Whether the attempt counts in the endpoint's load.</param>
internal struct AttemptScope(EndpointState state, long ticket, int number, string method, Activity? activity, CancellationTokenSource? tryTimeout,
    CancellationTokenSource? tryLinked, CancellationToken callerToken, long started, bool countedLoad)
{
    public readonly EndpointState State => state;

    public readonly long Ticket => ticket;

    public readonly int Number => number;

    public readonly string Method => method;

    public readonly Activity? Activity => activity;

    public readonly CancellationTokenSource? TryTimeout => tryTimeout;

    public readonly CancellationToken CallerToken => callerToken;

    /// <summary>Gets the token the attempt is sent with: the caller's, or linked with the per-try timeout.</summary>
    public readonly CancellationToken Token => tryLinked?.Token ?? callerToken;

    public readonly long Started => started;

    public readonly bool CountedLoad => countedLoad;

    /// <summary>Stops the activity and releases the per-try timeout; once.</summary>
    public void Dispose()
    {
        tryLinked?.Dispose();
        tryLinked = null;
        tryTimeout?.Dispose();
        tryTimeout = null;
        activity?.Dispose();
        activity = null;
    }
}
