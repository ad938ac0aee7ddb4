using System.Runtime.CompilerServices;
using System.Threading.RateLimiting;
using Lodestar.Diagnostics.Internal;
using Lodestar.Http;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.Resilience;
using Lodestar.Resilience.Admission.Internal;
using Lodestar.Resilience.Hedging.Internal;
using Lodestar.Resilience.Internal;
using Lodestar.Resilience.Retry.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Http.Internal;

/// <summary>
/// The request pipeline's entry: maps a logical URI to the client's route to the service (after asking the registered
/// <see cref="IRequestRouter"/>s once, which may choose another service and the route's deadline, retry policy and
/// hash key), then runs the pieces in order: admission (rate limit, concurrency slot) → overall deadline → body replayability → the retry or hedging
/// strategy, whose attempts the <see cref="AttemptRunner"/> sends to endpoints picked by the balancer.
/// </summary>
/// <remarks>
/// Because every attempt is rewritten to a concrete address, the connection pool keeps one pool per endpoint; a single
/// HTTP/2 connection can therefore never pin all traffic to one instance.
/// </remarks>
internal sealed class LodestarHandler : DelegatingHandler
{
    private readonly string _clientName;
    private readonly ResilienceRegistry _routes;
    private readonly TimeProvider _timeProvider;
    private readonly LodestarMetrics _metrics;
    private readonly AttemptRunner _runner;
    private readonly RetryStrategy _retry;
    private readonly HedgingStrategy _hedging;
    private readonly IRequestRouter[] _routers;
    private readonly IDisposable? _optionsChanges;

    // The client's options as the monitor last gave them: replaced when they change, so a request does not look them
    // up by the client's name in the monitor's cache.
    private LodestarClientOptions _options = null!;

    // The last logical URI's text and the service it names (null: passed through); a client called on one URI again
    // and again then reads no part of it, which would parse them all.
    private NamedUri? _lastNamed;

    // The route of the last request's service: a client that calls one service again and again then does not look it
    // up by client and service in the registry while it stays current. Kept as it is, so a client that calls several
    // services in turn allocates nothing for it (a name that differs from its route's only misses the shortcut).
    private ServiceRoute? _lastRoute;

    public LodestarHandler(string clientName, ResilienceRegistry routes, IOptionsMonitor<LodestarClientOptions> clientOptions,
        TimeProvider timeProvider, RandomSource random, LodestarMetrics metrics, ILogger<LodestarHandler> logger, ConnectionRetirer? retirer = null,
        IEnumerable<IRequestRouter>? routers = null)
    {
        _clientName = clientName;
        _routers = routers?.ToArray() ?? [];
        _routes = routes;
        _timeProvider = timeProvider;
        _metrics = metrics;
        _runner = new AttemptRunner((request, token) => base.SendAsync(request, token), timeProvider, metrics, logger, retirer);
        _retry = new RetryStrategy(_runner, random, metrics, logger);
        _hedging = new HedgingStrategy(_runner, metrics, logger);
        // Listening first: a change between the two steps is not missed, and its newer options are not overwritten.
        _optionsChanges = clientOptions.OnChange(OnOptionsChanged);
        Interlocked.CompareExchange(ref _options, clientOptions.Get(clientName), null);
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var logical = request.RequestUri;
        if (logical is null || !logical.IsAbsoluteUri)
        {
            return base.SendAsync(request, cancellationToken);
        }

        var original = logical.OriginalString;
        var named = Volatile.Read(ref _lastNamed);
        if (named is null || !string.Equals(named.Original, original, StringComparison.Ordinal))
        {
            named = new NamedUri(original, LogicalUri.GetServiceName(logical));
            Volatile.Write(ref _lastNamed, named);
        }

        var service = named.Service;
        if (service is null)
        {
            request.RequestUri = LogicalUri.PassThrough(logical);
            return base.SendAsync(request, cancellationToken);
        }

        return SendToServiceAsync(request, logical, service, cancellationToken).AsTask();
    }

    /// <remarks>
    /// From a pooled builder, as the strategies: a request that suspends (every one on a real transport) reuses a
    /// state-machine box, this method's being the largest of the pipeline; the caller's <see cref="Task"/> is then only
    /// the small wrapper <see cref="ValueTask{TResult}.AsTask"/> makes.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<HttpResponseMessage> SendToServiceAsync(HttpRequestMessage request, Uri logical, string service, CancellationToken cancellationToken)
    {
        var options = Volatile.Read(ref _options);
        var chosen = _routers.Length == 0 ? null : await RouteAsync(request, service, cancellationToken).ConfigureAwait(false);
        if (chosen is not null)
        {
            service = chosen.ServiceName;
            if (chosen.HashKey is { } hashKey && !request.Options.TryGetValue(LoadBalancingRequestOptions.HashKey, out _))
            {
                request.Options.Set(LoadBalancingRequestOptions.HashKey, hashKey);
            }
        }

        var timeout = chosen?.Timeout is { } routeTimeout ? (routeTimeout == TimeSpan.Zero ? null : routeTimeout) : options.Retry.Timeout;
        var maxAttempts = chosen?.Retry?.MaxAttempts ?? options.MaxAttempts;
        var kept = Volatile.Read(ref _lastRoute);
        ServiceRoute route;
        if (kept is not null && string.Equals(kept.ServiceName, service, StringComparison.Ordinal) && ResilienceRegistry.IsCurrent(kept))
        {
            route = kept;
        }
        else
        {
            route = await _routes.GetRouteAsync(_clientName, service, options, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _lastRoute, route);
        }

        var slot = await AdmissionControl.AdmitAsync(route, options, _metrics, cancellationToken).ConfigureAwait(false);
        CancellationTokenSource? deadline = null;
        CancellationTokenSource? linked = null;
        var requestStarted = _timeProvider.GetTimestamp();
        HttpResponseMessage? result = null;
        var failure = "error";
        string? errorType = null;
        var tally = new AttemptTally();
        try
        {
            var token = cancellationToken;
            if (timeout is { } limit)
            {
                deadline = new CancellationTokenSource(limit, _timeProvider);
                linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
                token = linked.Token;
            }

            route.Resilience.Budget.OnRequest(requestStarted);
            var safe = FailureClassifier.IsIdempotent(request.Method) || options.Retry.RetryNonIdempotent
                       || (request.Options.TryGetValue(LodestarRequestOptions.AllowRetries, out var allowed) && allowed);
            var replayable = await RequestBody.PrepareAsync(request, safe && maxAttempts > 1, options.Retry.MaxBufferedBodyBytes, token).ConfigureAwait(false);
            var context = new RequestContext(request, logical, route, options, safe, replayable, tally, chosen?.Retry);

            // The first attempt suspends here, in this method's state machine: the strategies' own run only for what
            // comes after it (hedges, retries), so a request answered at once passes through one.
            if (options.Hedging.Enabled && safe && replayable && RequestBody.IsInMemory(request.Content))
            {
                var start = _hedging.BeginFirst(context, token);
                var firstDone = start.Sending.IsCompleted;
                if (!firstDone && start.WaitsOnRound)
                {
                    // The first attempt or the hedging delay, whichever ends first.
                    firstDone = await start.Round.WaitAsync(start.Sending, start.Delay).ConfigureAwait(false);
                }

                result = _hedging.TryEndFirst(context, ref start, firstDone) ?? await _hedging.ContinueAsync(context, start, token).ConfigureAwait(false);
                return result;
            }

            var scope = _retry.BeginFirst(context, token, out var tried);
            var sending = _runner.Start(request, scope);
            await ((Task)sending).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            var first = _runner.End(request, context, ref scope, sending);
            result = RetryStrategy.IsFinal(context, first) ? first.Response! : await _retry.ContinueAsync(context, first, tried, token).ConfigureAwait(false);
            return result;
        }
        catch (NoEndpointsException)
        {
            failure = "no_endpoints";
            errorType = failure;
            throw;
        }
        catch (OperationCanceledException ex) when (deadline is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
        {
            failure = "deadline";
            errorType = failure;
            throw new TaskCanceledException(
                $"The request to service '{route.ServiceName}' did not complete within its deadline of {timeout!.Value.TotalMilliseconds} ms.",
                new TimeoutException(ex.Message, ex));
        }
        catch (Exception ex)
        {
            errorType = HttpSemanticConventions.ExceptionErrorType(ex);
            throw;
        }
        finally
        {
            linked?.Dispose();
            deadline?.Dispose();
            Release(slot);
            if (_metrics.RecordsRequests)
            {
                // Only for a listener: nothing else reads the request's outcome or its duration (no clock read otherwise).
                var status = result is null ? 0 : (int)result.StatusCode;
                var outcome = result is null ? failure : status < 500 ? "success" : "server_error";
                errorType ??= result is null ? failure : HttpSemanticConventions.StatusErrorType(status);
                _metrics.RecordRequest(route.ServiceName, logical, HttpSemanticConventions.Method(request.Method), outcome, status, errorType, tally.Resends,
                    _timeProvider.GetElapsedTime(requestStarted));
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _optionsChanges?.Dispose();
        }

        base.Dispose(disposing);
    }

    private void OnOptionsChanged(LodestarClientOptions options, string? name)
    {
        if (string.Equals(name ?? Options.DefaultName, _clientName, StringComparison.Ordinal))
        {
            Volatile.Write(ref _options, options);
        }
    }

    private static void Release(RateLimitLease? slot) => slot?.Dispose();

    private async ValueTask<RequestRoute?> RouteAsync(HttpRequestMessage request, string service, CancellationToken cancellationToken)
    {
        foreach (var router in _routers)
        {
            if (await router.RouteAsync(request, service, _clientName, cancellationToken).ConfigureAwait(false) is { } chosen)
            {
                return chosen;
            }
        }

        return null;
    }
}

/// <summary>A logical URI's original text and the service it names, or <see langword="null"/> for one passed through.</summary>
internal sealed record NamedUri(string Original, string? Service);
