using System.Collections.Concurrent;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Health;
using HealthClient = Grpc.Health.V1.Health.HealthClient;

namespace Lodestar.Grpc.Health.Internal;

/// <summary>
/// Probes endpoints with gRPC's standard health checking protocol: a unary <c>grpc.health.v1.Health/Check</c> for the
/// configured service name (<see cref="HealthCheckOptions.GrpcServiceName"/>; empty asks about the server as a whole).
/// <c>SERVING</c> passes; <c>NOT_SERVING</c>, <c>SERVICE_UNKNOWN</c>, <c>UNKNOWN</c> and any non-OK status
/// (<c>UNIMPLEMENTED</c> when the server has no health service, <c>NOT_FOUND</c> when it does not know the name) fail,
/// with that reason.
/// </summary>
/// <remarks>
/// As Envoy's <c>grpc_health_check</c>, the probe speaks h2c to <c>http</c> endpoints and TLS (default certificate
/// validation, as the HTTP probe) to <c>https</c> ones. It keeps one channel per endpoint, reused by every probe of that
/// endpoint and disposed when the endpoint leaves the service; the request and the failure results are built once, so
/// a probe allocates only the call itself. Responses are capped at 64 KiB.
/// </remarks>
internal sealed class GrpcHealthProbe : HealthProbe
{
    /// <summary>The largest response accepted: a <c>HealthCheckResponse</c> is a few bytes.</summary>
    internal const int MaxResponseBytes = 64 * 1024;

    // Indexed by Grpc.Core.StatusCode: the canonical names, as the gRPC specification spells them.
    private static readonly string[] s_statusNames =
    [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED",
    ];

    private readonly HealthCheckOptions _options;
    private readonly HealthCheckRequest _request;
    private readonly string _subject;
    private readonly HealthProbeResult _notServing;
    private readonly HealthProbeResult _serviceUnknown;
    private readonly HealthProbeResult _unknown;
    private readonly HealthProbeResult _unimplemented;
    private readonly HealthProbeResult _notFound;
    private readonly ConcurrentDictionary<DiscoveredEndpoint, Lazy<EndpointChannel>> _channels = new();
    private volatile bool _disposed;

    public GrpcHealthProbe(HealthCheckOptions options)
    {
        _options = options;
        _request = new HealthCheckRequest { Service = options.GrpcServiceName };
        _subject = options.GrpcServiceName.Length == 0 ? "the server" : $"service '{options.GrpcServiceName}'";
        _notServing = HealthProbeResult.Unhealthy($"NOT_SERVING: the health service reports {_subject} not serving");
        _serviceUnknown = HealthProbeResult.Unhealthy($"SERVICE_UNKNOWN: the health service does not know {_subject}");
        _unknown = HealthProbeResult.Unhealthy($"UNKNOWN: the health service reports no status for {_subject}");
        _unimplemented = HealthProbeResult.Unhealthy("UNIMPLEMENTED: the server has no grpc.health.v1.Health service");
        _notFound = HealthProbeResult.Unhealthy($"NOT_FOUND: the health service does not know {_subject}");
    }

    /// <summary>Gets how many endpoints have a channel now (tests).</summary>
    internal int ChannelCount => _channels.Count;

    protected override async ValueTask<HealthProbeResult> ProbeCoreAsync(DiscoveredEndpoint endpoint, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var channel = GetChannel(endpoint);
        try
        {
            using var call = channel.Client.CheckAsync(_request, cancellationToken: cancellationToken);
            var response = await call.ResponseAsync.ConfigureAwait(false);
            return response.Status switch
            {
                HealthCheckResponse.Types.ServingStatus.Serving => HealthProbeResult.Healthy,
                HealthCheckResponse.Types.ServingStatus.NotServing => _notServing,
                HealthCheckResponse.Types.ServingStatus.ServiceUnknown => _serviceUnknown,
                _ => _unknown,
            };
        }
        catch (RpcException ex)
        {
            return ex.StatusCode switch
            {
                StatusCode.Unimplemented => _unimplemented,
                StatusCode.NotFound => _notFound,
                // The detail is the server's (or the transport's) text: it may echo a credential.
                _ => HealthProbeResult.Unhealthy(SecretRedactor.Default.Redact(Describe(ex.Status))!),
            };
        }
    }

    protected override void OnEndpointReleased(DiscoveredEndpoint endpoint)
    {
        if (_channels.TryRemove(endpoint, out var channel) && channel.IsValueCreated)
        {
            channel.Value.Dispose();
        }
    }

    protected override void Dispose(bool disposing)
    {
        _disposed = true;
        foreach (var endpoint in _channels.Keys)
        {
            OnEndpointReleased(endpoint);
        }
    }

    /// <summary>Names a failed call's status as the gRPC specification does, with the detail the transport gave.</summary>
    internal static string Describe(Status status)
    {
        var code = (int)status.StatusCode;
        var name = code >= 0 && code < s_statusNames.Length ? s_statusNames[code] : $"status {code}";
        return string.IsNullOrEmpty(status.Detail) ? name : $"{name}: {status.Detail}";
    }

    private EndpointChannel GetChannel(DiscoveredEndpoint endpoint)
    {
        var channel = _channels.GetOrAdd(endpoint, static (e, self) => new Lazy<EndpointChannel>(() => self.CreateChannel(e)), this).Value;
        if (_disposed)
        {
            // Disposed while this probe added the channel: nobody else will release it.
            OnEndpointReleased(endpoint);
            ObjectDisposedException.ThrowIf(true, this);
        }

        return channel;
    }

    private EndpointChannel CreateChannel(DiscoveredEndpoint endpoint)
    {
        var scheme = string.Equals(endpoint.Scheme, "https", StringComparison.OrdinalIgnoreCase) ? "https" : "http";
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = _options.Timeout,
            PooledConnectionIdleTimeout = _options.Interval + _options.Interval + _options.IntervalJitter,
            EnableMultipleHttp2Connections = false,
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
        };
        var grpc = GrpcChannel.ForAddress(new Uri($"{scheme}://{endpoint.Address}"), new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = MaxResponseBytes,
            MaxRetryAttempts = 0,
        });
        return new EndpointChannel(grpc, new HealthClient(grpc));
    }

    /// <summary>One endpoint's channel and the generated client over it.</summary>
    private sealed class EndpointChannel(GrpcChannel grpc, HealthClient client) : IDisposable
    {
        public HealthClient Client { get; } = client;

        public void Dispose() => grpc.Dispose();
    }
}
