using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Threading.RateLimiting;
using Lodestar.Diagnostics;
using Lodestar.Diagnostics.Internal;
using Lodestar.Health.Internal;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Resilience;
using Lodestar.Resilience.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Http.Internal;

/// <summary>
/// The request pipeline: maps a logical URI to an endpoint picked for each attempt, tracks in-flight requests and
/// outcomes, and retries on another endpoint when that is safe and the retry budget allows.
/// </summary>
/// <remarks>
/// <para>
/// Because every attempt is rewritten to a concrete address, the connection pool keeps one pool per endpoint; a single
/// HTTP/2 connection can therefore never pin all traffic to one instance.
/// </para>
/// <para>
/// Order of one request: rate limit → concurrency slot (backpressure) → overall deadline → pick an endpoint whose
/// breaker admits → attempt (per-try timeout) → outcome to outlier detection and breaker → retry elsewhere or hedge.
/// </para>
/// </remarks>
internal sealed partial class LodestarHandler : DelegatingHandler
{
    private readonly string _clientName;
    private readonly ResilienceRegistry _resilience;
    private readonly IOptionsMonitor<LodestarClientOptions> _clientOptions;
    private readonly TimeProvider _timeProvider;
    private readonly RandomSource _random;
    private readonly LodestarMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ConnectionRetirer? _retirer;

    public LodestarHandler(string clientName, ResilienceRegistry resilience, IOptionsMonitor<LodestarClientOptions> clientOptions,
        TimeProvider timeProvider, RandomSource random, LodestarMetrics metrics, ILogger<LodestarHandler> logger, ConnectionRetirer? retirer = null)
    {
        _retirer = retirer;
        _clientName = clientName;
        _resilience = resilience;
        _clientOptions = clientOptions;
        _timeProvider = timeProvider;
        _random = random;
        _metrics = metrics;
        _logger = logger;
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var logical = request.RequestUri;
        if (logical is null || !logical.IsAbsoluteUri)
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var service = LogicalUri.GetServiceName(logical);
        if (service is null)
        {
            request.RequestUri = LogicalUri.PassThrough(logical);
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        var options = _clientOptions.Get(_clientName);
        var route = await _resilience.GetRouteAsync(_clientName, service, options, cancellationToken).ConfigureAwait(false);
        var balancer = route.Balancer;
        var resilience = route.Resilience;

        if (resilience.RateLimiter is { } rateLimiter)
        {
            if (!rateLimiter.TryTake())
            {
                _metrics.RecordRejected(balancer.ServiceName, "rate_limited");
                throw new RateLimitedException($"The client-side rate limit of service '{balancer.ServiceName}' rejected the request.") { ServiceName = balancer.ServiceName };
            }
        }

        RateLimitLease? slot = null;
        if (resilience.Concurrency is { } concurrency)
        {
            // Completes at once when a slot is free or the wait queue is full; waits (cancellably) only within MaxPendingRequests.
            slot = await concurrency.AcquireAsync(1, cancellationToken).ConfigureAwait(false);
            if (!slot.IsAcquired)
            {
                slot.Dispose();
                _metrics.RecordRejected(balancer.ServiceName, "overloaded");
                throw new ServiceOverloadedException(
                    $"Service '{balancer.ServiceName}' already has {options.ConcurrencyLimit.MaxConcurrentRequests} requests in flight and {options.ConcurrencyLimit.MaxPendingRequests} waiting.")
                { ServiceName = balancer.ServiceName };
            }
        }

        CancellationTokenSource? deadline = null;
        CancellationTokenSource? linked = null;
        var requestStarted = _timeProvider.GetTimestamp();
        HttpResponseMessage? result = null;
        var failure = "error";
        try
        {
            var token = cancellationToken;
            if (options.Retry.Timeout is { } timeout)
            {
                deadline = new CancellationTokenSource(timeout, _timeProvider);
                linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
                token = linked.Token;
            }

            resilience.Budget.OnRequest();
            var safe = IsIdempotent(request.Method) || options.Retry.RetryNonIdempotent
                       || (request.Options.TryGetValue(LodestarRequestOptions.AllowRetries, out var allowed) && allowed);
            var replayable = await PrepareBodyAsync(request, safe && options.MaxAttempts > 1, options.Retry.MaxBufferedBodyBytes, token).ConfigureAwait(false);
            result = options.Hedging.Enabled && safe && replayable && IsInMemory(request.Content)
                ? await SendHedgedAsync(request, logical, balancer, resilience, options, token).ConfigureAwait(false)
                : await SendWithRetriesAsync(request, logical, balancer, resilience, options, safe, replayable, token).ConfigureAwait(false);
            return result;
        }
        catch (NoEndpointsException)
        {
            failure = "no_endpoints";
            throw;
        }
        catch (OperationCanceledException ex) when (deadline is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
        {
            failure = "deadline";
            throw new TaskCanceledException(
                $"The request to service '{balancer.ServiceName}' did not complete within its deadline of {options.Retry.Timeout!.Value.TotalMilliseconds} ms.",
                new TimeoutException(ex.Message, ex));
        }
        finally
        {
            linked?.Dispose();
            deadline?.Dispose();
            slot?.Dispose();
            var outcome = result is null ? failure : (int)result.StatusCode < 500 ? "success" : "server_error";
            _metrics.RecordRequest(balancer.ServiceName, outcome, _timeProvider.GetElapsedTime(requestStarted));
        }
    }

    private async Task<HttpResponseMessage> SendWithRetriesAsync(HttpRequestMessage request, Uri logical, ServiceBalancer balancer, ClientResilience resilience,
        LodestarClientOptions options, bool safe, bool replayable, CancellationToken cancellationToken)
    {
        var retry = options.Retry;
        List<EndpointState>? excluded = null;
        ExponentialBackoff? backoff = null;
        Exception? lastError = null;
        var attempts = 0;
        var state = PickAdmitted(balancer, request, ref excluded, out var ticket);
        for (var attempt = 1; ; attempt++)
        {
            if (state is null)
            {
                throw NoEndpoints(balancer, attempts, excluded, lastError);
            }

            attempts++;
            var result = await SendAttemptAsync(request, logical, balancer, resilience, balancer.Stage, state, ticket, attempt, retry.PerTryTimeout, cancellationToken).ConfigureAwait(false);
            if (result.Response is { } response)
            {
                var status = (int)response.StatusCode;
                if (!resilience.IsRetryableStatus(status) || !safe || !replayable || attempt >= options.MaxAttempts)
                {
                    return response;
                }

                var retryAfter = GetRetryAfter(response, status);
                if (retryAfter > retry.MaxRetryAfter)
                {
                    return response;
                }

                (excluded ??= new List<EndpointState>(options.MaxAttempts)).Add(state);
                var next = PickAdmitted(balancer, request, ref excluded, out var nextTicket);
                if (next is null)
                {
                    return response;
                }

                if (!resilience.Budget.TryWithdraw())
                {
                    ReleaseAdmission(next, nextTicket);
                    _metrics.RecordRetryBudgetExhausted(balancer.ServiceName);
                    Log.RetryBudgetExhausted(_logger, balancer.ServiceName, attempt);
                    return response;
                }

                response.Dispose();
                var reason = "status_" + status.ToString(System.Globalization.CultureInfo.InvariantCulture);
                Log.RetryingElsewhere(_logger, balancer.ServiceName, state.Endpoint.Address, attempt, reason, "status " + status);
                _metrics.RecordRetry(balancer.ServiceName, reason);
                var delay = retryAfter ?? (backoff ??= new ExponentialBackoff(retry.BackoffBase, retry.BackoffMax, _random, TimeSpan.Zero)).NextDelay();
                await DelayOrReleaseAsync(delay, next, nextTicket, cancellationToken).ConfigureAwait(false);
                (state, ticket) = (next, nextTicket);
                continue;
            }

            var error = result.Error!;
            var failure = result.Reason;
            var allowed = failure is not null && attempt < options.MaxAttempts && (result.NeverSent
                ? replayable || failure != "refused_stream"
                : safe && replayable);
            if (!allowed)
            {
                throw Final(error, result, balancer);
            }

            (excluded ??= new List<EndpointState>(options.MaxAttempts)).Add(state);
            lastError = error;
            var following = PickAdmitted(balancer, request, ref excluded, out var followingTicket);
            if (following is not null && !resilience.Budget.TryWithdraw())
            {
                ReleaseAdmission(following, followingTicket);
                _metrics.RecordRetryBudgetExhausted(balancer.ServiceName);
                Log.RetryBudgetExhausted(_logger, balancer.ServiceName, attempt);
                throw Final(error, result, balancer);
            }

            Log.RetryingElsewhere(_logger, balancer.ServiceName, state.Endpoint.Address, attempt, failure!, error.Message);
            _metrics.RecordRetry(balancer.ServiceName, failure!);
            if (following is not null && !result.NeverSent)
            {
                // The server may have seen the request: back off. A request that never left goes elsewhere at once.
                var delay = (backoff ??= new ExponentialBackoff(retry.BackoffBase, retry.BackoffMax, _random, TimeSpan.Zero)).NextDelay();
                await DelayOrReleaseAsync(delay, following, followingTicket, cancellationToken).ConfigureAwait(false);
            }

            (state, ticket) = (following, followingTicket);
        }
    }

    /// <summary>
    /// Sends the first attempt, and after the hedging delay without a response another one to a different endpoint
    /// (up to <see cref="HedgingOptions.MaxHedgedAttempts"/>); a failed attempt starts the next at once. The first
    /// response that is not a retryable status wins; the others are cancelled and their responses disposed.
    /// </summary>
    private async Task<HttpResponseMessage> SendHedgedAsync(HttpRequestMessage request, Uri logical, ServiceBalancer balancer, ClientResilience resilience,
        LodestarClientOptions options, CancellationToken cancellationToken)
    {
        var hedging = options.Hedging;
        var delay = resilience.Latency?.GetPercentile(hedging.Delay) ?? hedging.Delay;
        // Hedges (started by the timer) are capped by MaxHedgedAttempts; attempts that replace failed ones by
        // MaxAttempts, as on the non-hedged path, so hedging never makes a request less likely to succeed.
        var maxAttempts = Math.Max(1 + hedging.MaxHedgedAttempts, options.MaxAttempts);
        var hedges = 0;

        List<EndpointState>? excluded = null;
        var running = new List<Task<AttemptResult>>(maxAttempts);
        using var hedgeCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        AttemptResult? last = null;
        var winnerFound = false;
        try
        {
            var first = PickAdmitted(balancer, request, ref excluded, out var firstTicket);
            if (first is null)
            {
                throw NoEndpoints(balancer, 0, excluded, null);
            }

            (excluded ??= new List<EndpointState>(maxAttempts)).Add(first);
            running.Add(SendAttemptAsync(request, logical, balancer, resilience, balancer.Stage, first, firstTicket, 1, options.Retry.PerTryTimeout, hedgeCts.Token));
            var started = 1;
            Task? hedgeTimer = hedging.MaxHedgedAttempts > 0 ? _timeProvider.DelayAsync(delay, hedgeCts.Token) : null;
            while (running.Count > 0)
            {
                var completed = hedgeTimer is null
                    ? await Task.WhenAny(running).ConfigureAwait(false)
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
                        last?.Response?.Dispose();
                        return response;
                    }

                    last?.Response?.Dispose();
                    last = result;
                    launch = result.Response is not null || result.Reason is not null;
                    retryReason = result.Response is not null ? "status" : result.Reason;
                }

                if (launch && started < maxAttempts && !cancellationToken.IsCancellationRequested)
                {
                    var next = PickAdmitted(balancer, request, ref excluded, out var nextTicket);
                    if (next is not null && resilience.Budget.TryWithdraw())
                    {
                        excluded!.Add(next);
                        started++;
                        if (retryReason is null)
                        {
                            hedges++;
                            _metrics.RecordHedge(balancer.ServiceName);
                        }
                        else
                        {
                            // The next attempt replaces a failed one: a retry, not a hedge.
                            _metrics.RecordRetry(balancer.ServiceName, retryReason);
                        }

                        Log.Hedging(_logger, balancer.ServiceName, next.Endpoint.Address, started);
                        // Cloned only now that a hedge fires. The first attempt is in flight: its synchronous start (where handlers
                        // such as DiagnosticsHandler add headers) has returned, and the clone reads the headers without parsing them.
                        running.Add(SendAttemptAsync(Clone(request), logical, balancer, resilience, balancer.Stage, next, nextTicket, started, options.Retry.PerTryTimeout, hedgeCts.Token));
                        hedgeTimer = started < maxAttempts && hedges < hedging.MaxHedgedAttempts ? _timeProvider.DelayAsync(delay, hedgeCts.Token) : null;
                    }
                    else if (next is not null)
                    {
                        ReleaseAdmission(next, nextTicket);
                        _metrics.RecordRetryBudgetExhausted(balancer.ServiceName);
                    }
                }
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (last?.Response is { } final)
            {
                winnerFound = true;
                return final;
            }

            throw Final(last!.Error!, last, balancer);
        }
        finally
        {
            if (running.Count > 0)
            {
                await hedgeCts.CancelAsync().ConfigureAwait(false);
                foreach (var loser in running)
                {
                    _ = DisposeWhenDoneAsync(loser);
                }
            }

            if (!winnerFound)
            {
                last?.Response?.Dispose();
            }
        }
    }

    private static async Task DisposeWhenDoneAsync(Task<AttemptResult> attempt)
    {
        // SendAttemptAsync never throws: it returns failures as results.
        var result = await attempt.ConfigureAwait(false);
        result.Response?.Dispose();
    }

    private async Task<AttemptResult> SendAttemptAsync(HttpRequestMessage request, Uri logical, ServiceBalancer balancer, ClientResilience resilience,
        HealthStage stage, EndpointState state, long ticket, int attempt, TimeSpan? perTryTimeout, CancellationToken cancellationToken)
    {
        var endpoint = state.Endpoint;
        request.RequestUri = LogicalUri.Rewrite(logical, LogicalUri.ChooseScheme(logical.Scheme, endpoint.Scheme), endpoint.Address);
        using var activity = LodestarDiagnostics.ActivitySource.StartActivity("lodestar.attempt", ActivityKind.Internal);
        if (activity is not null)
        {
            activity.SetTag("lodestar.service", balancer.ServiceName);
            activity.SetTag("lodestar.endpoint", endpoint.Address);
            activity.SetTag("lodestar.attempt", attempt);
        }

        CancellationTokenSource? tryTimeout = null;
        CancellationTokenSource? tryLinked = null;
        var token = cancellationToken;
        if (perTryTimeout is { } perTry)
        {
            tryTimeout = new CancellationTokenSource(perTry, _timeProvider);
            tryLinked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, tryTimeout.Token);
            token = tryLinked.Token;
        }

        var started = _timeProvider.GetTimestamp();
        var countedLoad = state.OnRequestStarted();
        if (state.Departed)
        {
            _retirer?.Revive(state);
        }

        try
        {
            var response = await base.SendAsync(request, token).ConfigureAwait(false);
            var elapsed = _timeProvider.GetElapsedTime(started);
            var status = (int)response.StatusCode;
            var success = status < 500;
            state.OnRequestCompleted(success, elapsed, countedLoad);
            stage.OnAttemptCompleted(state, ticket, success ? AttemptOutcome.Success
                : status is 502 or 503 or 504 ? AttemptOutcome.GatewayFailure : AttemptOutcome.ServerError);
            if (success)
            {
                resilience.Latency?.Record(elapsed);
            }

            _metrics.RecordAttempt(balancer.ServiceName, endpoint.Address, success ? "success" : "server_error", elapsed.TotalSeconds);
            activity?.SetTag("lodestar.outcome", success ? "success" : "server_error");
            activity?.SetTag("http.response.status_code", status);
            Log.AttemptCompleted(_logger, balancer.ServiceName, endpoint.Address, attempt, status);
            return new AttemptResult(response, null, null, false, false);
        }
        catch (Exception ex)
        {
            var elapsed = _timeProvider.GetElapsedTime(started);
            state.OnRequestCompleted(false, elapsed, countedLoad);
            var timedOut = tryTimeout is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested;
            string? reason;
            var neverSent = false;
            if (cancellationToken.IsCancellationRequested)
            {
                // The caller, the deadline or a winning hedge ended the attempt: no verdict on the endpoint.
                reason = null;
                HealthStage.OnAttemptAbandoned(state, ticket);
            }
            else
            {
                reason = timedOut ? "per_try_timeout" : ClassifyFailure(ex, out neverSent);
                stage.OnAttemptCompleted(state, ticket, reason == "connect_failure" || reason == "connect_timeout" ? AttemptOutcome.ConnectFailure : AttemptOutcome.GatewayFailure);
            }

            _metrics.RecordAttempt(balancer.ServiceName, endpoint.Address, reason ?? "error", elapsed.TotalSeconds);
            activity?.SetTag("lodestar.outcome", reason ?? "error");
            activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
            return new AttemptResult(null, ex, reason, neverSent, timedOut);
        }
        finally
        {
            tryLinked?.Dispose();
            tryTimeout?.Dispose();
        }
    }

    /// <summary>
    /// Picks an endpoint not in <paramref name="excluded"/> whose circuit breaker admits the request; endpoints whose
    /// breaker refuses are added to <paramref name="excluded"/>. Returns <see langword="null"/> when none is left.
    /// </summary>
    private EndpointState? PickAdmitted(ServiceBalancer balancer, HttpRequestMessage request, ref List<EndpointState>? excluded, out long ticket)
    {
        var state = balancer.Pick(new PickContext(request) { Attempted = excluded });
        _metrics.RecordPick(balancer.ServiceName, balancer.PolicyName);
        while (state is not null)
        {
            ticket = HealthStage.TryAdmit(state);
            if (ticket >= 0)
            {
                return state;
            }

            (excluded ??= []).Add(state);
            state = balancer.Pick(new PickContext(request) { Attempted = excluded });
        }

        ticket = -1;
        return null;
    }

    private static void ReleaseAdmission(EndpointState state, long ticket) => HealthStage.OnAttemptAbandoned(state, ticket);

    private async Task DelayOrReleaseAsync(TimeSpan delay, EndpointState state, long ticket, CancellationToken cancellationToken)
    {
        try
        {
            await _timeProvider.DelayAsync(delay, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            ReleaseAdmission(state, ticket);
            throw;
        }
    }

    private Exception NoEndpoints(ServiceBalancer balancer, int attempts, List<EndpointState>? excluded, Exception? lastError)
    {
        _metrics.NoEndpoints.Add(1, new KeyValuePair<string, object?>("lodestar.service", balancer.ServiceName));
        var refused = (excluded?.Count ?? 0) - attempts;
        string message;
        if (excluded is null || excluded.Count == 0)
        {
            message = $"Service '{balancer.ServiceName}' has no endpoints.";
        }
        else if (attempts == 0)
        {
            _metrics.RecordRejected(balancer.ServiceName, "circuit_open");
            message = $"Service '{balancer.ServiceName}' has no endpoint to send the request to: the circuit breakers of all {refused} candidate endpoint(s) are open.";
        }
        else
        {
            message = $"Service '{balancer.ServiceName}' has no endpoint left to try after {attempts} failed attempt(s)"
                      + (refused > 0 ? $" and {refused} endpoint(s) with open circuit breakers." : ".");
        }

        return new NoEndpointsException(message, lastError) { ServiceName = balancer.ServiceName };
    }

    private static Exception Final(Exception error, AttemptResult result, ServiceBalancer balancer)
    {
        if (result.TimedOut)
        {
            return new TaskCanceledException($"An attempt to service '{balancer.ServiceName}' exceeded its per-try timeout.", new TimeoutException(error.Message, error));
        }

        ExceptionDispatchInfo.Capture(error).Throw();
        return error;
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

    /// <summary>
    /// Says why an attempt may be retried on another endpoint, or <see langword="null"/> when it must not be.
    /// </summary>
    internal static string? Classify(Exception exception, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            // The caller (or HttpClient.Timeout) gave up: never retry.
            return null;
        }

        var reason = ClassifyFailure(exception, out var neverSent);
        return neverSent || IsIdempotent(request.Method) ? reason : null;
    }

    /// <summary>
    /// Names a failure that is not the caller's cancellation, or returns <see langword="null"/> when it is not worth a
    /// retry anywhere (bad configuration, authentication). <paramref name="neverSent"/> says the request cannot have
    /// reached a server, so any method may be sent again.
    /// </summary>
    internal static string? ClassifyFailure(Exception exception, out bool neverSent)
    {
        neverSent = false;
        if (exception is OperationCanceledException)
        {
            // Not the caller's token, so SocketsHttpHandler's ConnectTimeout fired: the request never left.
            neverSent = exception.InnerException is TimeoutException || exception.InnerException?.InnerException is TimeoutException;
            return neverSent ? "connect_timeout" : null;
        }

        if (exception is HttpRequestException hre)
        {
            switch (hre.HttpRequestError)
            {
                case HttpRequestError.ConnectionError:
                case HttpRequestError.NameResolutionError:
                case HttpRequestError.SecureConnectionError:
                    neverSent = true;
                    return "connect_failure";
                case HttpRequestError.HttpProtocolError when hre.InnerException is HttpProtocolException { ErrorCode: 0x7 }:
                    // HTTP/2 REFUSED_STREAM: the server guarantees it did not process the request.
                    neverSent = true;
                    return "refused_stream";
                case HttpRequestError.UserAuthenticationError:
                case HttpRequestError.ConfigurationLimitExceeded:
                case HttpRequestError.VersionNegotiationError:
                case HttpRequestError.ProxyTunnelError:
                    return null;
            }

            if (hre.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable })
            {
                neverSent = true;
                return "connect_failure";
            }
        }

        if (exception is not (HttpRequestException or IOException))
        {
            return null;
        }

        // The connection broke before any response headers arrived; the server may have processed the request.
        return "connection_lost";
    }

    internal static bool IsIdempotent(HttpMethod method)
        => method == HttpMethod.Get || method == HttpMethod.Head || method == HttpMethod.Options || method == HttpMethod.Put
           || method == HttpMethod.Delete || method == HttpMethod.Trace;

    /// <summary>
    /// Makes the body replayable when a retry is possible: in-memory bodies already are; a streamed body with a known
    /// length within the limit is buffered; anything else is sent once. Returns whether the body can be sent again.
    /// </summary>
    private static async ValueTask<bool> PrepareBodyAsync(HttpRequestMessage request, bool mayRetry, int limit, CancellationToken cancellationToken)
    {
        var content = request.Content;
        if (IsInMemory(content) || content!.GetType().Name.StartsWith("Json", StringComparison.Ordinal) || content is MultipartContent)
        {
            return true;
        }

        if (!mayRetry || content.Headers.ContentLength is not { } length || length > limit)
        {
            return false;
        }

        await content.LoadIntoBufferAsync(limit, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private static bool IsInMemory(HttpContent? content)
        => content is null or ByteArrayContent or ReadOnlyMemoryContent || content.Headers.ContentLength == 0;

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

    /// <summary>The end of one attempt: a response, or a failure with the reason it may be retried (null: it may not).</summary>
    private sealed record AttemptResult(HttpResponseMessage? Response, Exception? Error, string? Reason, bool NeverSent, bool TimedOut);

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Debug, "Attempt {Attempt} for service {Service} to {Endpoint} failed ({Reason}: {Error}); retrying on another endpoint.", EventName = "RetryingElsewhere")]
        public static partial void RetryingElsewhere(ILogger logger, string service, string endpoint, int attempt, string reason, string error);

        [LoggerMessage(101, LogLevel.Trace, "Attempt {Attempt} for service {Service} to {Endpoint} returned {StatusCode}.", EventName = "AttemptCompleted")]
        public static partial void AttemptCompleted(ILogger logger, string service, string endpoint, int attempt, int statusCode);

        [LoggerMessage(102, LogLevel.Debug, "The retry budget of service {Service} is spent; attempt {Attempt} is not retried.", EventName = "RetryBudgetExhausted")]
        public static partial void RetryBudgetExhausted(ILogger logger, string service, int attempt);

        [LoggerMessage(103, LogLevel.Debug, "Hedging a request to service {Service}: attempt {Attempt} goes to {Endpoint}.", EventName = "Hedging")]
        public static partial void Hedging(ILogger logger, string service, string endpoint, int attempt);
    }
}
