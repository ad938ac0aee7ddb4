using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Microsoft.Extensions.Logging;

namespace Lodestar.Grpc.Internal;

/// <summary>
/// Pushes a service's endpoint sets from Lodestar's endpoint cache into a channel: every new set becomes the channel's
/// address list; source errors reach the channel only while it has never had a set.
/// </summary>
internal sealed partial class LodestarResolver : Resolver
{
    private readonly IEndpointResolver _resolver;
    private readonly string _service;
    private readonly string? _source;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();

    // Serialises deliveries to the channel so that it never sees an older set after a newer one. Only deliveries take
    // it (never Dispose), so the channel's own lock, taken inside the listener, cannot be waited on in reverse order.
    private readonly Lock _deliveryGate = new();
    private Action<ResolverResult>? _listener;
    private IDisposable? _subscription;
    private long _version;
    private volatile bool _disposed;

    /// <summary>
    /// The version of the endpoint set an address came from (the watcher's <see cref="EndpointSet.Version"/>), so the
    /// balancer can tell whether Lodestar's balancer of the service has applied the set the channel has.
    /// </summary>
    internal static readonly BalancerAttributesKey<long> SetVersion = new("lodestar.set_version");

    public LodestarResolver(IEndpointResolver resolver, string service, string? source, ILoggerFactory loggerFactory)
    {
        _resolver = resolver;
        _service = service;
        _source = source;
        _logger = loggerFactory.CreateLogger("Lodestar.Grpc.Resolver");
    }

    public override void Start(Action<ResolverResult> listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        _listener = listener;
        IDisposable subscription;
        try
        {
            subscription = _resolver.Watch(_service, _source, OnEndpoints, OnError);
        }
        catch (Exception ex)
        {
            // No source accepts the service: every call fails with the reason rather than waiting forever.
            OnError(ex);
            return;
        }

        lock (_gate)
        {
            if (!_disposed)
            {
                _subscription = subscription;
                return;
            }
        }

        subscription.Dispose();
    }

    public override void Refresh()
    {
        // Push-based: the endpoint cache's watcher already delivers every change; nothing to poll.
    }

    protected override void Dispose(bool disposing)
    {
        IDisposable? subscription;
        lock (_gate)
        {
            _disposed = true;
            subscription = _subscription;
            _subscription = null;
        }

        subscription?.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>Maps one endpoint to a balancer address with its metadata as attributes.</summary>
    internal static BalancerAddress ToAddress(DiscoveredEndpoint endpoint)
    {
        var address = new BalancerAddress(endpoint.Host, endpoint.Port);
        var attributes = address.Attributes;
        attributes.Set(LodestarBalancerAttributes.Weight, endpoint.Weight);
        attributes.Set(LodestarBalancerAttributes.Priority, endpoint.Priority);
        if (endpoint.Zone is { } zone)
        {
            attributes.Set(LodestarBalancerAttributes.Zone, zone);
        }

        attributes.Set(LodestarBalancerAttributes.Labels, endpoint.Metadata);
        attributes.Set(LodestarBalancerAttributes.Endpoint, endpoint);
        return address;
    }

    private void OnEndpoints(EndpointSet set)
    {
        var addresses = new List<BalancerAddress>(set.Count);
        foreach (var endpoint in set.Endpoints)
        {
            var address = ToAddress(endpoint);
            address.Attributes.Set(LodestarBalancerAttributes.Service, _service);
            address.Attributes.Set(SetVersion, set.Version);
            if (_source is not null)
            {
                address.Attributes.Set(LodestarBalancerAttributes.Source, _source);
            }

            addresses.Add(address);
        }

        var result = ResolverResult.ForResult(addresses);
        result.Attributes.Set(LodestarBalancerAttributes.Service, _service);
        if (_source is not null)
        {
            result.Attributes.Set(LodestarBalancerAttributes.Source, _source);
        }

        lock (_deliveryGate)
        {
            if (_disposed || set.Version <= _version)
            {
                return;
            }

            _version = set.Version;
            Log.AddressesUpdated(_logger, _service, set.Version, set.Count);
            _listener?.Invoke(result);
        }
    }

    private void OnError(Exception error)
    {
        var message = SecretRedactor.Default.Redact(error.Message) ?? string.Empty;
        lock (_deliveryGate)
        {
            if (_disposed)
            {
                return;
            }

            if (_version > 0)
            {
                // The last good addresses stay in force; the source logs and counts its own errors.
                Log.ErrorKeptAddresses(_logger, _service, message);
                return;
            }

            _listener?.Invoke(ResolverResult.ForFailure(new Status(StatusCode.Unavailable,
                $"Lodestar could not resolve service '{_service}'{(_source is null ? string.Empty : $" from source '{_source}'")}: {message}")));
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Service {Service}: endpoint set {Version} with {Count} endpoint(s) pushed to the channel.", EventName = "AddressesUpdated")]
        public static partial void AddressesUpdated(ILogger logger, string service, long version, int count);

        [LoggerMessage(2, LogLevel.Debug, "Service {Service}: source error ({Error}); the channel keeps the last good addresses.", EventName = "ErrorKeptAddresses")]
        public static partial void ErrorKeptAddresses(ILogger logger, string service, string error);
    }
}
