using System.Diagnostics;
using System.Net.Sockets;
using Lodestar.Diagnostics;
using Lodestar.Diagnostics.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Http.Internal;

/// <summary>
/// The request pipeline: maps a logical URI to an endpoint picked for each attempt, tracks in-flight requests and
/// outcomes, and retries on another endpoint when that is safe.
/// </summary>
/// <remarks>
/// Because every attempt is rewritten to a concrete address, the connection pool keeps one pool per endpoint; a single
/// HTTP/2 connection can therefore never pin all traffic to one instance.
/// </remarks>
internal sealed partial class LodestarHandler : DelegatingHandler
{
    private readonly string _clientName;
    private readonly BalancerRegistry _registry;
    private readonly IOptionsMonitor<LodestarClientOptions> _clientOptions;
    private readonly TimeProvider _timeProvider;
    private readonly LodestarMetrics _metrics;
    private readonly ILogger _logger;

    public LodestarHandler(string clientName, BalancerRegistry registry, IOptionsMonitor<LodestarClientOptions> clientOptions,
        TimeProvider timeProvider, LodestarMetrics metrics, ILogger<LodestarHandler> logger)
    {
        _clientName = clientName;
        _registry = registry;
        _clientOptions = clientOptions;
        _timeProvider = timeProvider;
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
        var balancer = await _registry.GetAsync(service, options.Source, options.Policy, cancellationToken).ConfigureAwait(false);
        var state = balancer.Pick(request);
        _metrics.RecordPick(balancer.ServiceName, balancer.PolicyName);
        var requestStarted = _timeProvider.GetTimestamp();
        List<EndpointState>? tried = null;
        Exception? lastError = null;
        for (var attempt = 1; ; attempt++)
        {
            if (state is null)
            {
                _metrics.NoEndpoints.Add(1, new KeyValuePair<string, object?>("lodestar.service", balancer.ServiceName));
                _metrics.RecordRequest(balancer.ServiceName, "no_endpoints", _timeProvider.GetElapsedTime(requestStarted));
                var message = tried is null
                    ? $"Service '{balancer.ServiceName}' has no endpoints."
                    : $"Service '{balancer.ServiceName}' has no endpoint left to try after {tried.Count} failed attempt(s).";
                throw new NoEndpointsException(message, lastError) { ServiceName = balancer.ServiceName };
            }

            var endpoint = state.Endpoint;
            request.RequestUri = LogicalUri.Rewrite(logical, LogicalUri.ChooseScheme(logical.Scheme, endpoint.Scheme), endpoint.Address);
            using var activity = LodestarDiagnostics.ActivitySource.StartActivity("lodestar.attempt", ActivityKind.Internal);
            if (activity is not null)
            {
                activity.SetTag("lodestar.service", balancer.ServiceName);
                activity.SetTag("lodestar.endpoint", endpoint.Address);
                activity.SetTag("lodestar.attempt", attempt);
            }

            var started = _timeProvider.GetTimestamp();
            state.OnRequestStarted();
            try
            {
                var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                var elapsed = _timeProvider.GetElapsedTime(started);
                var success = (int)response.StatusCode < 500;
                state.OnRequestCompleted(success, elapsed);
                _metrics.RecordAttempt(balancer.ServiceName, endpoint.Address, success ? "success" : "server_error", elapsed.TotalSeconds);
                activity?.SetTag("lodestar.outcome", success ? "success" : "server_error");
                activity?.SetTag("http.response.status_code", (int)response.StatusCode);
                Log.AttemptCompleted(_logger, balancer.ServiceName, endpoint.Address, attempt, (int)response.StatusCode);
                _metrics.RecordRequest(balancer.ServiceName, success ? "success" : "server_error", _timeProvider.GetElapsedTime(requestStarted));
                return response;
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
            {
                var elapsed = _timeProvider.GetElapsedTime(started);
                state.OnRequestCompleted(false, elapsed);
                var reason = Classify(ex, request, cancellationToken);
                _metrics.RecordAttempt(balancer.ServiceName, endpoint.Address, reason ?? "error", elapsed.TotalSeconds);
                activity?.SetTag("lodestar.outcome", reason ?? "error");
                activity?.SetStatus(ActivityStatusCode.Error, ex.Message);
                if (reason is null || attempt >= options.MaxAttempts || !CanResend(request))
                {
                    _metrics.RecordRequest(balancer.ServiceName, reason ?? "error", _timeProvider.GetElapsedTime(requestStarted));
                    throw;
                }

                (tried ??= new List<EndpointState>(options.MaxAttempts)).Add(state);
                lastError = ex;
                Log.RetryingElsewhere(_logger, balancer.ServiceName, endpoint.Address, attempt, reason, ex.Message);
                _metrics.RecordRetry(balancer.ServiceName, reason);
                state = balancer.PickExcluding(request, tried);
                _metrics.RecordPick(balancer.ServiceName, balancer.PolicyName);
            }
        }
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

        if (exception is OperationCanceledException)
        {
            // Not the caller's token, so SocketsHttpHandler's ConnectTimeout fired: the request never left.
            return exception.InnerException is TimeoutException || exception.InnerException?.InnerException is TimeoutException ? "connect_timeout" : null;
        }

        if (exception is HttpRequestException hre)
        {
            switch (hre.HttpRequestError)
            {
                case HttpRequestError.ConnectionError:
                case HttpRequestError.NameResolutionError:
                case HttpRequestError.SecureConnectionError:
                    return "connect_failure";
                case HttpRequestError.HttpProtocolError when hre.InnerException is HttpProtocolException { ErrorCode: 0x7 }:
                    // HTTP/2 REFUSED_STREAM: the server guarantees it did not process the request.
                    return "refused_stream";
                case HttpRequestError.UserAuthenticationError:
                case HttpRequestError.ConfigurationLimitExceeded:
                case HttpRequestError.VersionNegotiationError:
                case HttpRequestError.ProxyTunnelError:
                    return null;
            }

            if (hre.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.HostUnreachable or SocketError.NetworkUnreachable })
            {
                return "connect_failure";
            }
        }

        // The connection broke before any response headers arrived. Only idempotent methods may be sent again,
        // because the server may have processed the request.
        return IsIdempotent(request.Method) ? "connection_lost" : null;
    }

    internal static bool IsIdempotent(HttpMethod method)
        => method == HttpMethod.Get || method == HttpMethod.Head || method == HttpMethod.Options || method == HttpMethod.Put
           || method == HttpMethod.Delete || method == HttpMethod.Trace;

    private static bool CanResend(HttpRequestMessage request)
        // A stream body cannot be read twice; buffered bodies (string, bytes, form, JSON) can.
        => request.Content is null or ByteArrayContent or ReadOnlyMemoryContent or MultipartContent
           || request.Content.GetType().Name.StartsWith("Json", StringComparison.Ordinal)
           || request.Content.Headers.ContentLength == 0;

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Debug, "Attempt {Attempt} for service {Service} to {Endpoint} failed ({Reason}: {Error}); retrying on another endpoint.", EventName = "RetryingElsewhere")]
        public static partial void RetryingElsewhere(ILogger logger, string service, string endpoint, int attempt, string reason, string error);

        [LoggerMessage(101, LogLevel.Trace, "Attempt {Attempt} for service {Service} to {Endpoint} returned {StatusCode}.", EventName = "AttemptCompleted")]
        public static partial void AttemptCompleted(ILogger logger, string service, string endpoint, int attempt, int statusCode);
    }
}
