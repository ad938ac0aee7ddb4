using System.Globalization;
using System.Runtime.CompilerServices;
using Lodestar.Diagnostics.Internal;
using Lodestar.Health.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.Resilience.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Resilience.Retry.Internal;

/// <summary>
/// Sends a request's attempts one after another, each to an endpoint not tried yet for it, until one gets a response
/// that is not retried or the request may not go on.
/// </summary>
/// <remarks>
/// A failure that never reached a server (refused or timed-out connect, HTTP/2 refused stream) goes elsewhere at once,
/// for any method whose body can be replayed. Any other failure, and the retryable status codes, are retried only for
/// safe requests with a replayable body, after a capped, jittered exponential backoff (or the <c>Retry-After</c> of a
/// 429/503 within <see cref="RetryOptions.MaxRetryAfter"/>), and only while the retry budget allows.
/// </remarks>
internal sealed partial class RetryStrategy
{
    private readonly AttemptRunner _runner;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly LodestarMetrics _metrics;
    private readonly ILogger _logger;

    public RetryStrategy(AttemptRunner runner, RandomSource random, LodestarMetrics metrics, ILogger logger)
    {
        _runner = runner;
        _timeProvider = runner.TimeProvider;
        _random = random;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>
    /// Picks the endpoint for a request's first attempt and begins the attempt (<see cref="AttemptRunner.Begin"/>); the
    /// caller sends it and ends it, and hands the result to <see cref="ContinueAsync"/> unless <see cref="IsFinal"/>.
    /// The first attempt of every request is sent from the caller's own state machine: a request that succeeds at once
    /// (nearly all) then suspends in one Lodestar method, not in one per layer.
    /// </summary>
    /// <param name="context">The request.</param>
    /// <param name="cancellationToken">Ends the attempt without a verdict on the endpoint.</param>
    /// <param name="tried">The endpoints refused by their breakers on the way, or <see langword="null"/>; for <see cref="ContinueAsync"/>.</param>
    /// <exception cref="Http.NoEndpointsException">No endpoint is left to send the request to.</exception>
    public AttemptScope BeginFirst(in RequestContext context, CancellationToken cancellationToken, out List<EndpointState>? tried)
    {
        tried = null;
        var state = EndpointSelection.PickAdmitted(context, ref tried, _metrics, out var ticket)
                    ?? throw EndpointSelection.NoEndpoints(context, 0, null, tried, _metrics);
        return _runner.Begin(context.Request, context, state, ticket, 1, cancellationToken);
    }

    /// <summary>Returns whether a first attempt's result is the request's answer: a response that is not retried whatever the budget says.</summary>
    public static bool IsFinal(in RequestContext context, in AttemptResult first)
        => first.Response is { } response
           && (!context.Safe || !context.Replayable || context.MaxAttempts <= 1 || !context.IsRetryableStatus((int)response.StatusCode));

    /// <summary>Goes on from a request's first attempt (see <see cref="BeginFirst"/>): retries it elsewhere while it may, or returns or throws its outcome.</summary>
    /// <remarks>From a pooled builder, as <see cref="AttemptRunner.SendAsync"/>: no state-machine box per request.</remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<HttpResponseMessage> ContinueAsync(RequestContext context, AttemptResult first, List<EndpointState>? tried, CancellationToken cancellationToken)
    {
        var options = context.Options;
        var retry = options.Retry;
        var resilience = context.Route.Resilience;
        var service = context.ServiceName;
        FailedAttempts? failures = null;
        var retries = 0;
        EndpointState? state = null;
        long ticket = -1;

        // A retry holds a slot of the cap on retries in flight (max_retries) from when it is decided until its attempt ends.
        var retrying = false;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                AttemptResult result;
                if (attempt == 1)
                {
                    result = first;
                }
                else
                {
                    if (state is null)
                    {
                        throw EndpointSelection.NoEndpoints(context, attempt - 1, failures, tried, _metrics);
                    }

                    result = await _runner.SendAsync(context.Request, context, state, ticket, attempt, cancellationToken).ConfigureAwait(false);
                }

                state = result.Endpoint;

                if (retrying)
                {
                    retrying = false;
                    resilience.ExitRetry();
                }

                if (result.Response is { } response)
                {
                    var status = (int)response.StatusCode;
                    if (!context.IsRetryableStatus(status) || !context.Safe || !context.Replayable || attempt >= context.MaxAttempts)
                    {
                        return response;
                    }

                    var retryAfter = GetRetryAfter(response, status);
                    if (retryAfter > retry.MaxRetryAfter)
                    {
                        return response;
                    }

                    // The list of tried endpoints exists only once a retry is considered: a first attempt that succeeds allocates nothing for it.
                    (tried ??= new List<EndpointState>(context.MaxAttempts)).Add(state);
                    var next = EndpointSelection.PickAdmitted(context, ref tried, _metrics, out var nextTicket);
                    if (next is null)
                    {
                        return response;
                    }

                    if (!resilience.TryEnterRetry())
                    {
                        HealthStage.OnAttemptAbandoned(next, nextTicket);
                        Log.RetryCapReached(_logger, service, resilience.MaxConcurrentRetries!.Value, attempt);
                        return response;
                    }

                    retrying = true;
                    if (!resilience.Budget.TryWithdraw())
                    {
                        HealthStage.OnAttemptAbandoned(next, nextTicket);
                        _metrics.RecordRetryBudgetExhausted(service);
                        Log.RetryBudgetExhausted(_logger, service, attempt);
                        return response;
                    }

                    response.Dispose();
                    var reason = "status_" + status.ToString(CultureInfo.InvariantCulture);
                    Log.RetryingElsewhere(_logger, service, state.Endpoint.Address, attempt, reason, "status " + status);
                    _metrics.RecordRetry(service, reason);
                    var delay = retryAfter ?? Backoff(context, retries++);
                    await DelayOrReleaseAsync(delay, next, nextTicket, cancellationToken).ConfigureAwait(false);
                    (state, ticket) = (next, nextTicket);
                    continue;
                }

                (failures ??= new FailedAttempts()).Add(result);
                var failure = result.Failure;
                var allowed = failure.Reason is not null && attempt < context.MaxAttempts && (failure.NeverSent
                    ? context.Replayable || failure.Reason != FailureClassifier.RefusedStream
                    : context.Safe && context.Replayable);
                if (!allowed)
                {
                    throw failures.Final(service, result);
                }

                (tried ??= new List<EndpointState>(context.MaxAttempts)).Add(state);
                var following = EndpointSelection.PickAdmitted(context, ref tried, _metrics, out var followingTicket);
                if (following is not null && !resilience.TryEnterRetry())
                {
                    HealthStage.OnAttemptAbandoned(following, followingTicket);
                    Log.RetryCapReached(_logger, service, resilience.MaxConcurrentRetries!.Value, attempt);
                    throw failures.Final(service, result);
                }

                retrying = following is not null;
                if (following is not null && !resilience.Budget.TryWithdraw())
                {
                    HealthStage.OnAttemptAbandoned(following, followingTicket);
                    _metrics.RecordRetryBudgetExhausted(service);
                    Log.RetryBudgetExhausted(_logger, service, attempt);
                    throw failures.Final(service, result);
                }

                Log.RetryingElsewhere(_logger, service, state.Endpoint.Address, attempt, failure.Reason!, result.Error!.Message);
                _metrics.RecordRetry(service, failure.Reason!);
                if (following is not null && !failure.NeverSent)
                {
                    // The server may have seen the request: back off. A request that never left goes elsewhere at once.
                    var delay = Backoff(context, retries++);
                    await DelayOrReleaseAsync(delay, following, followingTicket, cancellationToken).ConfigureAwait(false);
                }

                (state, ticket) = (following, followingTicket);
            }
        }
        finally
        {
            if (retrying)
            {
                resilience.ExitRetry();
            }
        }
    }

    /// <summary>
    /// Capped exponential backoff with full jitter (Envoy's and the AWS architecture blog's): uniform in
    /// [0, min(max, base × 2^retry)], to the tick; <see cref="ClockDelay"/> then waits at least that long.
    /// </summary>
    private TimeSpan Backoff(in RequestContext context, int previousRetries)
    {
        var ceiling = Math.Min(context.BackoffMax.Ticks, context.BackoffBase.Ticks * Math.Pow(2, Math.Min(previousRetries, 30)));
        return TimeSpan.FromTicks((long)(_random.NextDouble() * ceiling));
    }

    private async Task DelayOrReleaseAsync(TimeSpan delay, EndpointState next, long ticket, CancellationToken cancellationToken)
    {
        try
        {
            await ClockDelay.WaitAsync(_timeProvider, delay, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            HealthStage.OnAttemptAbandoned(next, ticket);
            throw;
        }
    }

    private TimeSpan? GetRetryAfter(HttpResponseMessage response, int status)
    {
        if (status is not (429 or 503) || response.Headers.RetryAfter is not { } retryAfter)
        {
            return null;
        }

        if (retryAfter.Delta is { } delta)
        {
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        }

        if (retryAfter.Date is { } date)
        {
            var wait = date - _timeProvider.GetUtcNow();
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }

        return null;
    }

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Debug, "Attempt {Attempt} for service {Service} to {Endpoint} failed ({Reason}: {Error}); retrying on another endpoint.", EventName = "RetryingElsewhere")]
        public static partial void RetryingElsewhere(ILogger logger, string service, string endpoint, int attempt, string reason, string error);

        [LoggerMessage(104, LogLevel.Debug, "Service {Service} has {MaxConcurrentRetries} retries in flight, its cap; attempt {Attempt} is not retried.", EventName = "RetryCapReached")]
        public static partial void RetryCapReached(ILogger logger, string service, int maxConcurrentRetries, int attempt);

        [LoggerMessage(102, LogLevel.Debug, "The retry budget of service {Service} is spent; attempt {Attempt} is not retried.", EventName = "RetryBudgetExhausted")]
        public static partial void RetryBudgetExhausted(ILogger logger, string service, int attempt);
    }
}
