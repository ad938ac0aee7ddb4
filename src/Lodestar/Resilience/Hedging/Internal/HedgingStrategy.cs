using System.Collections.Concurrent;
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
/// about a millisecond more at most (see <see cref="HedgeClock"/> for the exception). A first hedge the retry budget would
/// refuse, or that finds work waiting for a thread in the thread pool (<see cref="HedgingOptions.SkipWhenThreadPoolBusy"/>),
/// does not end the wait on the round: the request goes on as an unhedged one (see <see cref="HedgeRound"/>).
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

    // On the system clock every round is alike (its deadlines go to the process's hedging clock), so each thread keeps
    // one round returned on it for the next request it starts, whatever the strategy: most requests then take and
    // return a round without touching the shared queue and its counter, lines every caller would write.
    [ThreadStatic]
    private static HedgeRound? t_spare;
    private readonly bool _usesSpare;

    // Whether work waits for a thread as the first hedge's delay passes (HedgingOptions.SkipWhenThreadPoolBusy).
    private static readonly Func<bool> s_threadPoolBusy = static () => ThreadPool.PendingWorkItemCount > 0;

    public HedgingStrategy(AttemptRunner runner, LodestarMetrics metrics, ILogger logger)
    {
        _runner = runner;
        _timeProvider = runner.TimeProvider;
        _usesSpare = _timeProvider == TimeProvider.System;
        _metrics = metrics;
        _logger = logger;
    }

    /// <summary>
    /// Picks the endpoint for a hedged request's first attempt, and begins and starts the attempt on a pooled round. The
    /// caller waits on the round when <see cref="HedgedStart.WaitsOnRound"/> (for the first attempt or the delay,
    /// whichever ends first), then calls <see cref="TryEndFirst"/>, and <see cref="ContinueAsync"/> unless that gave the
    /// answer: a request whose first attempt wins suspends in the caller's state machine only.
    /// </summary>
    /// <exception cref="Http.NoEndpointsException">No endpoint is left to send the request to.</exception>
    public HedgedStart BeginFirst(in RequestContext context, CancellationToken cancellationToken)
    {
        var hedging = context.Options.Hedging;
        var delay = context.Route.Resilience.Latency?.GetPercentile(hedging.Delay) ?? hedging.Delay;
        List<EndpointState>? tried = null;
        var first = EndpointSelection.PickAdmitted(context, ref tried, _metrics, out var firstTicket)
                    ?? throw EndpointSelection.NoEndpoints(context, 0, null, tried, _metrics);
        var round = RentRound();
        round.Start(cancellationToken);
        round.Admit(context.Route.Resilience.Budget, hedging.MaxHedgeRatio, _metrics, context.ServiceName, hedging.SkipWhenThreadPoolBusy ? s_threadPoolBusy : null);

        // The first attempt is begun and ended around the transport's own task: it becomes a task of its own only
        // when a hedge follows.
        var scope = _runner.Begin(context.Request, context, first, firstTicket, 1, round.Token);
        var sending = _runner.Start(context.Request, scope);
        return new HedgedStart(round, tried, scope, sending, delay, hedging.MaxHedgedAttempts > 0 && delay > TimeSpan.Zero);
    }

    /// <summary>
    /// Ends the first attempt if it has completed (<paramref name="firstDone"/>); returns its response when it wins (the
    /// round then serves another request), otherwise <see langword="null"/> for <see cref="ContinueAsync"/>.
    /// </summary>
    public HttpResponseMessage? TryEndFirst(in RequestContext context, ref HedgedStart start, bool firstDone)
    {
        if (!firstDone)
        {
            return null;
        }

        // Answered before the delay (or before the first await): no hedge.
        start.FirstResult = _runner.End(context.Request, context, ref start.Scope, start.Sending);
        start.FirstEnded = true;
        if (start.FirstResult.Response is { } response && !context.Route.Resilience.IsRetryableStatus((int)response.StatusCode))
        {
            ReturnRound(start.Round);
            return response;
        }

        return null;
    }

    /// <summary>Goes on with a hedged request whose first attempt did not win at once: hedges, retries, and the losers' grace.</summary>
    /// <remarks>From a pooled builder, as <see cref="AttemptRunner.SendAsync"/>: no state-machine box per request.</remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<HttpResponseMessage> ContinueAsync(RequestContext context, HedgedStart start, CancellationToken cancellationToken)
    {
        var options = context.Options;
        var hedging = options.Hedging;
        var resilience = context.Route.Resilience;
        var service = context.ServiceName;
        var delay = start.Delay;

        // Hedges (started by the timer) are capped by MaxHedgedAttempts; attempts that replace failed ones by
        // MaxAttempts, as on the non-hedged path, so hedging never makes a request less likely to succeed.
        var maxAttempts = Math.Max(1 + hedging.MaxHedgedAttempts, options.MaxAttempts);
        var hedges = 0;
        var tried = start.Tried;
        var first = start.Scope.State;
        FailedAttempts? failures = null;
        List<Task<AttemptResult>>? running = null;
        HedgeRound? round = start.Round;
        HedgeTimer? timer = null;
        var firstStarted = start.Scope.Started;
        HttpResponseMessage? lastResponse = null;
        AttemptResult lastFailure = default;
        var winnerFound = false;
        try
        {
            Task? hedgeTimer = null;
            Task<AttemptResult> firstAttempt;
            if (start.FirstEnded)
            {
                // Ended with a status to retry: the loop below retries it at once.
                firstAttempt = Task.FromResult(start.FirstResult);
            }
            else
            {
                // Still running: the delay has passed on the round, or (a zero delay, no hedges) there was none to wait.
                hedgeTimer = start.WaitsOnRound ? Task.CompletedTask : StartTimer(ref timer, hedging.MaxHedgedAttempts > 0, delay);
                firstAttempt = _runner.EndAsync(context.Request, context, start.Scope, start.Sending);
            }

            (tried ??= new List<EndpointState>(maxAttempts)).Add(first);
            running = new List<Task<AttemptResult>>(maxAttempts) { firstAttempt };
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
                    // A hedge (not a replacement of a failed attempt) also stays within the hedged share, when one is set.
                    if (next is not null && resilience.Budget.TryWithdraw(retryReason is null ? hedging.MaxHedgeRatio : null))
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
        if (_usesSpare && t_spare is { } spare)
        {
            t_spare = null;
            return spare;
        }

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
        if (_usesSpare && t_spare is null)
        {
            t_spare = round;
            return;
        }

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

/// <summary>A hedged request's first attempt between <see cref="HedgingStrategy.BeginFirst"/> and its end.</summary>
internal struct HedgedStart
{
    public HedgedStart(HedgeRound round, List<EndpointState>? tried, AttemptScope scope, Task<HttpResponseMessage> sending, TimeSpan delay, bool waitsOnRound)
    {
        Round = round;
        Tried = tried;
        Scope = scope;
        Sending = sending;
        Delay = delay;
        WaitsOnRound = waitsOnRound;
    }

    /// <summary>Gets the pooled round: the attempts' token, and the wait for the first attempt or the delay.</summary>
    public HedgeRound Round { get; }

    /// <summary>Gets the endpoints refused by their breakers before the first was admitted, or <see langword="null"/>.</summary>
    public List<EndpointState>? Tried { get; }

    /// <summary>Gets the transport's task of the first attempt.</summary>
    public Task<HttpResponseMessage> Sending { get; }

    /// <summary>Gets the hedging delay of this request.</summary>
    public TimeSpan Delay { get; }

    /// <summary>Gets whether the caller waits on the round for the first attempt or the delay (a positive delay, hedges allowed).</summary>
    public bool WaitsOnRound { get; }

    /// <summary>The first attempt, begun; ended by <see cref="HedgingStrategy.TryEndFirst"/> or by a task once a hedge follows.</summary>
    public AttemptScope Scope;

    /// <summary>The first attempt's result, once <see cref="FirstEnded"/>.</summary>
    public AttemptResult FirstResult;

    /// <summary>Whether the first attempt has been ended into <see cref="FirstResult"/>.</summary>
    public bool FirstEnded;
}
