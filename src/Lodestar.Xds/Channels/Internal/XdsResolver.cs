using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Xds.Client;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Discovery.Internal;
using Lodestar.Xds.Listeners;
using Lodestar.Xds.Listeners.Internal;
using Lodestar.Xds.Routing;
using Lodestar.Xds.Routing.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// Resolves an <c>xds:///&lt;listener&gt;</c> channel: follows the listener (LDS) to its route configuration (RDS or
/// inline), watches the endpoints of every cluster the virtual host for the listener names (through Lodestar's endpoint
/// cache and the <c>xds</c> source: CDS, then EDS), and hands the channel all of them, each address tagged with its
/// cluster, together with a service config that selects the cluster-picking balancer.
/// </summary>
/// <remarks>
/// The route table itself travels to the balancer in a shared <see cref="XdsChannelRoutes"/>, so a route change that
/// keeps the same clusters needs no new address list. Errors keep the last good addresses: the channel hears of a
/// problem only while it has never had any.
/// </remarks>
internal sealed partial class XdsResolver : Resolver
{
    private static readonly ServiceConfig s_serviceConfig = new() { LoadBalancingConfigs = { new LoadBalancingConfig(XdsClusterBalancerFactory.PolicyName) } };

    private readonly XdsClientProvider _clients;
    private readonly IEndpointResolver _endpoints;
    private readonly XdsChannelRoutes _routes;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();

    // Serialises deliveries so that the channel never sees an older address list after a newer one; only deliveries
    // take it, so the channel's own lock (taken inside the listener) is never waited on in reverse order.
    private readonly Lock _deliveryGate = new();
    private readonly Dictionary<string, ClusterWatch> _clusters = new(StringComparer.Ordinal);
    private XdsClient? _client;
    private Action<ResolverResult>? _listener;
    private IDisposable? _listenerWatch;
    private IDisposable? _routeWatch;
    private string? _routeName;
    private long _generation;
    private long _delivered;
    private bool _published;
    private bool _disposed;

    public XdsResolver(XdsClientProvider clients, IEndpointResolver endpoints, string listener, ILoggerFactory loggerFactory)
    {
        _clients = clients;
        _endpoints = endpoints;
        _routes = new XdsChannelRoutes(listener);
        _logger = loggerFactory.CreateLogger("Lodestar.Xds.Resolver");
    }

    /// <summary>Gets the listener the channel follows.</summary>
    public string Listener => _routes.Listener;

    public override void Start(Action<ResolverResult> listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        _listener = listener;
        XdsClient client;
        try
        {
            client = _clients.Client;
        }
        catch (Exception ex)
        {
            // The bootstrap cannot be read: every call fails with the reason rather than waiting forever.
            Fail($"the xDS client cannot start: {ex.Message}");
            return;
        }

        var watch = client.Watch(ListenerDecoder.Instance, Listener, new XdsWatcher<XdsListenerResource>(OnListener, OnError, OnListenerMissing));
        lock (_gate)
        {
            if (!_disposed)
            {
                _client = client;
                _listenerWatch = watch;
                return;
            }
        }

        watch.Dispose();
    }

    public override void Refresh()
    {
        // Push-based: the control plane's updates arrive over the ADS stream; nothing to poll.
    }

    protected override void Dispose(bool disposing)
    {
        List<IDisposable?> handles = [];
        lock (_gate)
        {
            _disposed = true;
            handles.Add(_listenerWatch);
            handles.Add(_routeWatch);
            handles.AddRange(_clusters.Values.Select(static c => c.Handle));
            _listenerWatch = _routeWatch = null;
            _clusters.Clear();
        }

        foreach (var handle in handles)
        {
            handle?.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>Gets the clusters a route table can send this channel's calls to: those of the virtual host for the listener.</summary>
    internal static IReadOnlyCollection<string> ClustersOf(XdsRouteTable table, string listener)
    {
        var host = table.FindVirtualHost(listener);
        if (host is null)
        {
            return [];
        }

        var clusters = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var route in host.Routes)
        {
            if (route.Action is { } action)
            {
                foreach (var cluster in action.Clusters)
                {
                    clusters.Add(cluster.Name);
                }
            }
        }

        return clusters;
    }

    private void OnListener(XdsListenerResource listener)
    {
        IDisposable? old = null;
        XdsRouteTable? inline = null;
        lock (_gate)
        {
            if (_disposed || _client is not { } client)
            {
                return;
            }

            _routes.MaxStreamDuration = listener.MaxStreamDuration;
            if (listener.InlineRoutes is { } routes)
            {
                old = _routeWatch;
                _routeWatch = null;
                _routeName = null;
                inline = routes;
            }
            else if (listener.RouteConfigName is { } routeName && routeName != _routeName)
            {
                old = _routeWatch;
                _routeName = routeName;
                _routeWatch = client.Watch(RouteConfigurationDecoder.Instance, routeName, new XdsWatcher<XdsRouteTable>(OnRoutes, OnError, OnRoutesMissing));
            }
        }

        old?.Dispose();
        if (inline is not null)
        {
            OnTable(inline);
        }
    }

    private void OnRoutes(XdsRouteTable table)
    {
        lock (_gate)
        {
            if (_disposed || table.Name != _routeName)
            {
                return;
            }
        }

        OnTable(table);
    }

    private void OnTable(XdsRouteTable table)
    {
        var wanted = ClustersOf(table, Listener);
        if (wanted.Count == 0)
        {
            // Nothing to send calls to: keep the last good table and addresses, as for a rejected update.
            OnProblem($"no virtual host of route configuration '{table.Name}' matches '{Listener}', or its routes name no cluster");
            return;
        }

        List<IDisposable> removed = [];
        List<string> added = [];
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _routes.Table = table;
            foreach (var name in _clusters.Keys.Where(name => !wanted.Contains(name)).ToList())
            {
                if (_clusters.Remove(name, out var gone) && gone.Handle is { } handle)
                {
                    removed.Add(handle);
                }
            }

            foreach (var name in wanted)
            {
                if (!_clusters.ContainsKey(name))
                {
                    _clusters.Add(name, new ClusterWatch());
                    added.Add(name);
                }
            }
        }

        foreach (var handle in removed)
        {
            handle.Dispose();
        }

        Log.RoutesChanged(_logger, Listener, table.Name, wanted.Count);

        // Outside the lock: the endpoint cache calls back at once with a set it already has.
        foreach (var name in added)
        {
            IDisposable handle;
            try
            {
                handle = _endpoints.Watch(name, XdsEndpointSourceProvider.SourceName, set => OnEndpoints(name, set), error => OnClusterError(name, error));
            }
            catch (Exception ex)
            {
                OnClusterError(name, ex);
                continue;
            }

            var keep = false;
            lock (_gate)
            {
                if (!_disposed && _clusters.TryGetValue(name, out var watch) && watch.Handle is null)
                {
                    watch.Handle = handle;
                    keep = true;
                }
            }

            if (!keep)
            {
                handle.Dispose();
            }
        }

        Publish();
    }

    private void OnEndpoints(string cluster, EndpointSet set)
    {
        lock (_gate)
        {
            if (_disposed || !_clusters.TryGetValue(cluster, out var watch) || (watch.Set is { } current && current.Version >= set.Version))
            {
                return;
            }

            watch.Set = set;
        }

        Publish();
    }

    private void Publish()
    {
        List<BalancerAddress> addresses = [];
        long generation;
        lock (_gate)
        {
            if (_disposed || !_clusters.Values.Any(static c => c.Set is not null))
            {
                return; // Nothing to hand over before the first cluster's endpoints arrive.
            }

            var empty = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (cluster, watch) in _clusters)
            {
                if (watch.Set is { Count: 0 })
                {
                    empty.Add(cluster);
                }

                foreach (var endpoint in watch.Set?.Endpoints ?? [])
                {
                    addresses.Add(ToAddress(endpoint, cluster));
                }
            }

            _routes.EmptyClusters = empty;

            generation = ++_generation;
        }

        lock (_deliveryGate)
        {
            if (_disposed || generation <= _delivered)
            {
                return;
            }

            _delivered = generation;
            _published = true;
            Log.AddressesUpdated(_logger, Listener, addresses.Count);
            _listener?.Invoke(ResolverResult.ForResult(addresses, s_serviceConfig, serviceConfigStatus: null));
        }
    }

    private BalancerAddress ToAddress(DiscoveredEndpoint endpoint, string cluster)
    {
        var address = new BalancerAddress(endpoint.Host, endpoint.Port);
        address.Attributes.Set(XdsChannelRoutes.ClusterKey, cluster);
        address.Attributes.Set(XdsChannelRoutes.Key, _routes);
        return address;
    }

    private void OnListenerMissing()
        => OnProblem($"the listener does not exist on xDS server '{_client?.ServerName}'");

    private void OnRoutesMissing()
        => OnProblem($"its route configuration '{_routeName}' does not exist on xDS server '{_client?.ServerName}'");

    private void OnError(Exception error) => OnProblem(error.Message);

    private void OnClusterError(string cluster, Exception error) => OnProblem($"cluster '{cluster}': {error.Message}");

    private void OnProblem(string problem)
    {
        problem = SecretRedactor.Default.Redact(problem) ?? string.Empty;
        lock (_deliveryGate)
        {
            if (_disposed)
            {
                return;
            }

            if (_published)
            {
                // The last good addresses and routes stay in force; the xDS client logs the stream's own errors.
                Log.ProblemKeptAddresses(_logger, Listener, problem);
                return;
            }
        }

        Fail(problem);
    }

    private void Fail(string problem)
    {
        lock (_deliveryGate)
        {
            if (_disposed || _published)
            {
                return;
            }

            _listener?.Invoke(ResolverResult.ForFailure(new Status(StatusCode.Unavailable,
                $"The xDS channel for listener '{Listener}' has no addresses yet: {SecretRedactor.Default.Redact(problem)}")));
        }
    }

    /// <summary>One cluster the routes name: its endpoint subscription and latest set.</summary>
    private sealed class ClusterWatch
    {
        public IDisposable? Handle { get; set; }

        public EndpointSet? Set { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(60, LogLevel.Debug, "xDS channel {Listener}: route configuration {RouteConfiguration} names {Clusters} cluster(s).", EventName = "XdsChannelRoutesChanged")]
        public static partial void RoutesChanged(ILogger logger, string listener, string routeConfiguration, int clusters);

        [LoggerMessage(61, LogLevel.Debug, "xDS channel {Listener}: {Count} address(es) pushed to the channel.", EventName = "XdsChannelAddressesUpdated")]
        public static partial void AddressesUpdated(ILogger logger, string listener, int count);

        [LoggerMessage(62, LogLevel.Debug, "xDS channel {Listener}: {Problem}; the channel keeps the last good addresses and routes.", EventName = "XdsChannelProblem")]
        public static partial void ProblemKeptAddresses(ILogger logger, string listener, string problem);
    }
}
