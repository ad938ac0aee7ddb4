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
    /// reuses a state-machine box instead of allocating one per attempt; the caller awaits it exactly once.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<AttemptResult> SendAsync(HttpRequestMessage request, RequestContext context, EndpointState state, long ticket, int attempt,
        CancellationToken cancellationToken)
    {
        var route = context.Route;
        var endpoint = state.Endpoint;
        var logical = context.Logical;
        request.RequestUri = LogicalUri.Rewrite(logical, state);
        var method = HttpSemanticConventions.Method(request.Method);
        context.Tally.OnAttempt();
        using var activity = LodestarDiagnostics.ActivitySource.StartActivity("lodestar.attempt", ActivityKind.Internal);
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
        var token = cancellationToken;
        if (context.PerTryTimeout is { } perTry)
        {
            tryTimeout = new CancellationTokenSource(perTry, _timeProvider);
            tryLinked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, tryTimeout.Token);
            token = tryLinked.Token;
        }

        var started = _timeProvider.GetTimestamp();
        var countedLoad = state.OnRequestStarted();
        if (state.Departed)
        {
            // Picked from a picker built just before the endpoint left: keep retirement from closing its connection under it.
            _retirer?.Revive(state);
        }

        try
        {
            var response = await _send(request, token).ConfigureAwait(false);
            var elapsed = _timeProvider.GetElapsedTime(started);
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
                    }, (route.Stage, state, ticket));
                }
            }

            var success = outcome == AttemptOutcome.Success;
            state.OnRequestCompleted(success, elapsed, countedLoad);
            if (!deferred)
            {
                route.Stage.OnAttemptCompleted(state, ticket, outcome);
            }

            if (success && attempt == 1)
            {
                // First attempts only: a hedge's or a retry's latency says nothing about when to hedge a first attempt.
                route.Resilience.Latency?.Record(elapsed);
            }

            var label = success ? "success" : "server_error";
            var errorType = HttpSemanticConventions.StatusErrorType(status);
            _metrics.RecordAttempt(route.ServiceName, endpoint, new AttemptTags(attempt, label, method, request.RequestUri.Scheme, status, errorType), elapsed.TotalSeconds);
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

            Log.AttemptCompleted(_logger, route.ServiceName, endpoint.Address, attempt, status);
            return AttemptResult.FromResponse(state, response);
        }
        catch (Exception ex)
        {
            var elapsed = _timeProvider.GetElapsedTime(started);
            var timedOut = tryTimeout is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested;
            var failure = FailureClassifier.Classify(ex, timedOut, abandoned: cancellationToken.IsCancellationRequested);
            if (failure.Outcome is null)
            {
                // Abandoned (a winning hedge, the caller, the deadline): not a failure of the endpoint, and its latency
                // is only known to be at least this long.
                state.OnRequestAbandoned(elapsed, countedLoad);
            }
            else
            {
                state.OnRequestCompleted(false, elapsed, countedLoad);
            }

            if (failure.Outcome is { } outcome)
            {
                route.Stage.OnAttemptCompleted(state, ticket, outcome);
            }
            else
            {
                HealthStage.OnAttemptAbandoned(state, ticket);
            }

            var label = failure.Reason ?? "error";
            var errorType = failure.Reason ?? HttpSemanticConventions.ExceptionErrorType(ex);
            _metrics.RecordAttempt(route.ServiceName, endpoint, new AttemptTags(attempt, label, method, request.RequestUri.Scheme, 0, errorType), elapsed.TotalSeconds);
            if (activity is not null)
            {
                activity.SetTag("lodestar.outcome", label);
                activity.SetTag(HttpSemanticConventions.ErrorType, errorType);
                activity.SetStatus(ActivityStatusCode.Error, Discovery.SecretRedactor.Default.Redact(ex.Message));
            }
            return AttemptResult.FromFailure(state, ex, failure, timedOut);
        }
        finally
        {
            tryLinked?.Dispose();
            tryTimeout?.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(101, LogLevel.Trace, "Attempt {Attempt} for service {Service} to {Endpoint} returned {StatusCode}.", EventName = "AttemptCompleted")]
        public static partial void AttemptCompleted(ILogger logger, string service, string endpoint, int attempt, int statusCode);
    }
}
