using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Lodestar.Diagnostics.Internal;
using Lodestar.Health.Internal;
using Lodestar.LoadBalancing;
using Lodestar.Resilience.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Resilience.Hedging.Internal;

/// <summary>
/// Sends the first attempt, and after the hedging delay without a response another one to a different endpoint (up to
/// <see cref="HedgingOptions.MaxHedgedAttempts"/>); a failed attempt starts the next at once. The first response that
/// is not a retryable status wins; the others are given the hedging delay again to finish, then cancelled, and their
/// responses are disposed.
/// </summary>
/// <remarks>
/// <para>
/// Nothing is paid before a hedge fires: no clone of the request and, with a zero delay, no timer. A hedge's request is
/// cloned when it is launched; by then the first attempt's synchronous start (where handlers such as
/// <c>DiagnosticsHandler</c> add headers) has returned, and the clone reads the headers without parsing them.
/// </para>
/// <para>
/// A zero delay hedges at once, without a timer. Any other delay is waited, until the first hedge, on a pooled
/// <see cref="HedgeRound"/> (the attempts' cancellation source, a timer, and one wait for the first attempt or the
/// delay): a request whose first attempt wins goes back to the pool and allocates nothing for hedging. Only a request
/// that hedges or retries makes tasks, a <see cref="HedgeTimer"/> for further hedges, and the lists of attempts. Either
/// timer waits at least the delay, even below a millisecond (where a timer would round to zero and fire at once), and
/// at most a millisecond more.
/// </para>
/// <para>
/// A loser is not cancelled the moment another attempt wins. With no instance slow, a hedge fires because one request
/// was unlucky, and its loser answers a moment later; cancelling it costs more than the hedge saved: over HTTP/1.1
/// <see cref="SocketsHttpHandler"/> closes the connection of a cancelled request (the next request pays for a new one,
/// about 22 KB and a handshake per hedge, measured), and over HTTP/2 the cancellation surfaces as a thrown exception.
/// So the losers get the delay once more: one that answers in that time has its response disposed (its connection
/// goes back to the pool, its outcome and latency are recorded as any attempt's), and one still running is cancelled.
/// A request that ends without a winner, or that the caller cancelled, cancels its attempts at once.
/// </para>
/// <para>
/// The percentile delay is estimated from first attempts only (<see cref="LatencyTracker"/>): a hedge's own latency
/// would pull the estimate down, and a first attempt that loses to a hedge is recorded with the time it had run when it
/// was cancelled (a lower bound, at least the delay) instead of being left out, which would do the same.
/// </para>
/// </remarks>
internal sealed partial class HedgingStrategy
{
    private readonly AttemptRunner _runner;
    private readonly TimeProvider _timeProvider;
    private readonly LodestarMetrics _metrics;
    private readonly ILogger _logger;

    // Rounds of requests whose first attempt won, for the next requests. A caller that sends its next request as the
    // last one ends takes back the round it just returned, so few are pooled at once; a burst of requests that end
    // together may return up to MaxPooledRounds. The queue reuses its segment once it has grown.
    private const int MaxPooledRounds = 1024;
    private readonly ConcurrentQueue<HedgeRound> _rounds = new();
    private int _pooledRounds;

    public HedgingStrategy(AttemptRunner runner, LodestarMetrics metrics, ILogger logger)
    {
        _runner = runner;
        _timeProvider = runner.TimeProvider;
        _metrics = metrics;
        _logger = logger;
    }

    /// <remarks>From a pooled builder, as <see cref="AttemptRunner.SendAsync"/>: no state-machine box per request.</remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<HttpResponseMessage> ExecuteAsync(RequestContext context, CancellationToken cancellationToken)
    {
        var options = context.Options;
        var hedging = options.Hedging;
        var resilience = context.Route.Resilience;
        var service = context.ServiceName;
        var delay = resilience.Latency?.GetPercentile(hedging.Delay) ?? hedging.Delay;

        // Hedges (started by the timer) are capped by MaxHedgedAttempts; attempts that replace failed ones by
        // MaxAttempts, as on the non-hedged path, so hedging never makes a request less likely to succeed.
        var maxAttempts = Math.Max(1 + hedging.MaxHedgedAttempts, options.MaxAttempts);
        var hedges = 0;
        List<EndpointState>? tried = null;
        FailedAttempts? failures = null;
        List<Task<AttemptResult>>? running = null;
        var round = RentRound();
        round.Start(cancellationToken);
        HedgeTimer? timer = null;
        Task<AttemptResult>? firstAttempt = null;
        var firstStarted = 0L;
        HttpResponseMessage? lastResponse = null;
        AttemptResult lastFailure = default;
        var winnerFound = false;
        try
        {
            var first = EndpointSelection.PickAdmitted(context, ref tried, _metrics, out var firstTicket);
            if (first is null)
            {
                throw EndpointSelection.NoEndpoints(context, 0, null, tried, _metrics);
            }

            firstStarted = _timeProvider.GetTimestamp();

            // The first attempt is begun and ended here, around the transport's own task: a request whose first attempt
            // wins suspends in this method only, and the attempt becomes a task of its own only when a hedge follows.
            var callerActivity = Activity.Current;
            var firstScope = _runner.Begin(context.Request, context, first, firstTicket, 1, round.Token);
            var firstSend = _runner.Start(context.Request, firstScope, callerActivity);
            Task? hedgeTimer = null;
            var firstDone = firstSend.IsCompleted;
            if (!firstDone && hedging.MaxHedgedAttempts > 0 && delay > TimeSpan.Zero)
            {
                // The common case: the first attempt or the delay, whichever ends first, waited on the pooled round with
                // no task, timer or cancellation source of the request's own.
                firstDone = await round.WaitAsync(firstSend, delay).ConfigureAwait(false);
                if (!firstDone)
                {
                    hedgeTimer = Task.CompletedTask;
                }
            }
            else if (!firstDone)
            {
                hedgeTimer = StartTimer(ref timer, hedging.MaxHedgedAttempts > 0, delay);
            }

            if (firstDone)
            {
                // Answered before the delay (or before the first await): no hedge, and the round serves another request.
                var result = _runner.EndCompleted(context.Request, context, ref firstScope, firstSend);
                if (result.Response is { } response && !resilience.IsRetryableStatus((int)response.StatusCode))
                {
                    winnerFound = true;
                    ReturnRound(round);
                    round = null;
                    return response;
                }

                firstAttempt = Task.FromResult(result);
            }
            else
            {
                firstAttempt = _runner.EndAsync(context.Request, context, firstScope, firstSend);
            }

            (tried ??= new List<EndpointState>(maxAttempts)).Add(first);
            running = new List<Task<AttemptResult>>(maxAttempts) { firstAttempt! };
            var started = 1;
            while (running.Count > 0)
            {
                // The common case, one attempt and the timer, takes the two-task overload: no array per wait.
                var completed = hedgeTimer is null
                    ? running.Count == 1 ? running[0] : await Task.WhenAny(running).ConfigureAwait(false)
                    : running.Count == 1
                        ? await Task.WhenAny(running[0], hedgeTimer).ConfigureAwait(false)
                        : await Task.WhenAny([.. running, hedgeTimer]).ConfigureAwait(false);
                bool launch;
                string? retryReason = null;
                if (completed == hedgeTimer)
                {
                    hedgeTimer = null;
                    launch = true;
                }
                else
                {
                    var attemptTask = (Task<AttemptResult>)completed;
                    running.Remove(attemptTask);
                    var result = await attemptTask.ConfigureAwait(false);
                    if (result.Response is { } response && !resilience.IsRetryableStatus((int)response.StatusCode))
                    {
                        winnerFound = true;
                        if (attemptTask != firstAttempt && running.Contains(firstAttempt!))
                        {
                            // The first attempt loses to a hedge: it took at least this long (see the remarks).
                            resilience.Latency?.Record(_timeProvider.GetElapsedTime(firstStarted));
                        }

                        lastResponse?.Dispose();
                        return response;
                    }

                    lastResponse?.Dispose();
                    lastResponse = result.Response;
                    if (result.Response is null)
                    {
                        (failures ??= new FailedAttempts()).Add(result);
                        lastFailure = result;
                    }

                    launch = result.Response is not null || result.Failure.Reason is not null;
                    retryReason = result.Response is not null ? "status" : result.Failure.Reason;
                }

                if (launch && started < maxAttempts && !cancellationToken.IsCancellationRequested)
                {
                    var next = EndpointSelection.PickAdmitted(context, ref tried, _metrics, out var nextTicket);
                    if (next is not null && resilience.Budget.TryWithdraw())
                    {
                        tried!.Add(next);
                        started++;
                        if (retryReason is null)
                        {
                            hedges++;
                            _metrics.RecordHedge(service);
                        }
                        else
                        {
                            // The next attempt replaces a failed one: a retry, not a hedge.
                            _metrics.RecordRetry(service, retryReason);
                        }

                        Log.Hedging(_logger, service, next.Endpoint.Address, started);
                        running.Add(_runner.SendAsync(Clone(context.Request), context, next, nextTicket, started, round!.Token).AsTask());
                        hedgeTimer = StartTimer(ref timer, started < maxAttempts && hedges < hedging.MaxHedgedAttempts, delay);
                    }
                    else if (next is not null)
                    {
                        HealthStage.OnAttemptAbandoned(next, nextTicket);
                        _metrics.RecordRetryBudgetExhausted(service);
                    }
                }
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (lastResponse is not null)
            {
                winnerFound = true;
                return lastResponse;
            }

            throw failures!.Final(service, lastFailure);
        }
        finally
        {
            if (running is { Count: > 0 })
            {
                foreach (var loser in running)
                {
                    _ = DisposeWhenDoneAsync(loser);
                }

                if (winnerFound && delay > TimeSpan.Zero && !cancellationToken.IsCancellationRequested)
                {
                    // The losers get the delay again to finish before they are cancelled (see the remarks); the grace
                    // task owns the round and the timer from here.
                    _ = CancelAfterGraceAsync(round!, timer ?? new HedgeTimer(_timeProvider), running, delay);
                    round = null;
                    timer = null;
                }
                else
                {
                    await round!.CancelAsync().ConfigureAwait(false);
                }
            }

            timer?.Dispose();

            // A round that went past the common case is not reused: its first attempt may still complete into it.
            round?.Dispose();

            if (!winnerFound)
            {
                lastResponse?.Dispose();
            }
        }
    }

    private HedgeRound RentRound()
    {
        if (_rounds.TryDequeue(out var round))
        {
            Interlocked.Decrement(ref _pooledRounds);
            return round;
        }

        return new HedgeRound(_timeProvider);
    }

    private void ReturnRound(HedgeRound round)
    {
        round.Reset();
        if (Interlocked.Increment(ref _pooledRounds) <= MaxPooledRounds)
        {
            _rounds.Enqueue(round);
            return;
        }

        Interlocked.Decrement(ref _pooledRounds);
        round.Dispose();
    }

    private Task? StartTimer(ref HedgeTimer? timer, bool more, TimeSpan delay)
    {
        if (!more)
        {
            return null;
        }

        if (delay <= TimeSpan.Zero)
        {
            return Task.CompletedTask;
        }

        return (timer ??= new HedgeTimer(_timeProvider)).StartAsync(delay);
    }

    /// <summary>
    /// Cancels the attempts that lost to the winner if they are still running once <paramref name="grace"/> has passed,
    /// then ends the round.
    /// </summary>
    private static async Task CancelAfterGraceAsync(HedgeRound round, HedgeTimer timer, List<Task<AttemptResult>> losers, TimeSpan grace)
    {
        try
        {
            // The attempt runner never throws, so the losers' tasks only ever complete with results.
            var finished = Task.WhenAll(losers);
            if (await Task.WhenAny(finished, timer.StartAsync(grace)).ConfigureAwait(false) != finished)
            {
                await round.CancelAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            timer.Dispose();
            round.Dispose();
        }
    }

    private static async Task DisposeWhenDoneAsync(Task<AttemptResult> attempt)
    {
        // The attempt runner never throws: it returns failures as results.
        var result = await attempt.ConfigureAwait(false);
        result.Response?.Dispose();
    }

    private static HttpRequestMessage Clone(HttpRequestMessage request)
    {
        var clone = new HttpRequestMessage(request.Method, request.RequestUri)
        {
            Version = request.Version,
            VersionPolicy = request.VersionPolicy,
            Content = request.Content,
        };
        foreach (var header in request.Headers.NonValidated)
        {
            clone.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        var options = (IDictionary<string, object?>)clone.Options;
        foreach (var option in request.Options)
        {
            options[option.Key] = option.Value;
        }

        return clone;
    }

    private static partial class Log
    {
        [LoggerMessage(103, LogLevel.Debug, "Hedging a request to service {Service}: attempt {Attempt} goes to {Endpoint}.", EventName = "Hedging")]
        public static partial void Hedging(ILogger logger, string service, string endpoint, int attempt);
    }
}
