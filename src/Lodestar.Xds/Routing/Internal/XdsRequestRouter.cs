using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using Lodestar.Http;
using Lodestar.LoadBalancing;
using Lodestar.Resilience.Admission;
using Lodestar.Xds.Client;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Discovery.Internal;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Listeners;
using Lodestar.Xds.Listeners.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Xds.Routing.Internal;

/// <summary>
/// Routes the requests of clients whose source is <c>xds</c> through the control plane's route table: the listener
/// named after the request's authority (<c>host</c> or <c>host:port</c>, as gRPC names a target's listener) leads over
/// its HTTP connection manager to a route configuration (RDS or inline), whose virtual host and first matching route
/// choose the cluster (a weighted pick for weighted clusters), the timeout, the retry policy and the hash key.
/// </summary>
/// <remarks>
/// <para>
/// A listener is watched from the first request for its authority and for as long as the process runs; that request
/// waits for the listener and its routes (at most <see cref="LodestarOptions.ResolutionTimeout"/>), later ones read the
/// current table without waiting. A listener the control plane does not have leaves the request to the cluster its
/// host names (the <c>xds</c> source's part-one behaviour). Updates replace the table with one reference write; a
/// rejected update leaves the last accepted one in force.
/// </para>
/// <para>
/// A request that no route matches, or whose route is a redirect or a direct response, fails with an
/// <see cref="HttpRequestException"/> naming the listener, the route configuration and the request's authority and path,
/// as Envoy answers 404 and gRPC fails the call.
/// </para>
/// <para>
/// The chosen cluster's EDS drop overloads then apply: a dropped request fails at once with a
/// <see cref="ServiceOverloadedException"/> naming the cluster and the drop category, is not sent, not retried and
/// counts against no endpoint.
/// </para>
/// </remarks>
internal sealed partial class XdsRequestRouter : IRequestRouter, IDisposable
{
    private readonly XdsClientProvider _clients;
    private readonly IOptionsMonitor<LodestarClientOptions> _clientOptions;
    private readonly IOptionsMonitor<LodestarOptions> _lodestarOptions;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly Func<double> _random;
    private readonly XdsDropOverloads? _drops;
    private readonly IServiceBalancing? _balancing;
    private readonly ConcurrentDictionary<string, Lazy<ListenerWatch>> _listeners = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConditionalWeakTable<XdsRetryPolicy, RouteRetryPolicy> _retryPolicies = new();

    public XdsRequestRouter(XdsClientProvider clients, IOptionsMonitor<LodestarClientOptions> clientOptions, IOptionsMonitor<LodestarOptions> lodestarOptions,
        TimeProvider timeProvider, ILogger<XdsRequestRouter> logger, XdsDropOverloads drops, IServiceBalancing balancing)
        : this(clients, clientOptions, lodestarOptions, timeProvider, logger, static () => Random.Shared.NextDouble(), drops, balancing)
    {
    }

    internal XdsRequestRouter(XdsClientProvider clients, IOptionsMonitor<LodestarClientOptions> clientOptions, IOptionsMonitor<LodestarOptions> lodestarOptions,
        TimeProvider timeProvider, ILogger logger, Func<double> random, XdsDropOverloads? drops = null, IServiceBalancing? balancing = null)
    {
        _drops = drops;
        _balancing = balancing;
        _clients = clients;
        _clientOptions = clientOptions;
        _lodestarOptions = lodestarOptions;
        _timeProvider = timeProvider;
        _logger = logger;
        _random = random;
    }

    public async ValueTask<RequestRoute?> RouteAsync(HttpRequestMessage request, string serviceName, string clientName, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var route = await RouteCoreAsync(request, clientName, cancellationToken).ConfigureAwait(false);
        if (route is null && !IsXdsClient(clientName))
        {
            return null;
        }

        await ApplyDropsAsync(route?.ServiceName ?? serviceName, clientName, cancellationToken).ConfigureAwait(false);
        return route;
    }

    /// <summary>
    /// Drops the request before it is sent when a drop overload of its cluster says so (EDS <c>policy.drop_overloads</c>,
    /// each category in order with its probability): it fails with a <see cref="ServiceOverloadedException"/> naming the
    /// cluster and the category, is not retried and touches no endpoint's health.
    /// </summary>
    private async ValueTask ApplyDropsAsync(string cluster, string clientName, CancellationToken cancellationToken)
    {
        if (_drops is not { } drops)
        {
            return;
        }

        if (!drops.IsKnown(cluster) && _balancing is { } balancing)
        {
            // The cluster's first request: its endpoint source starts with its balancer, and the drops arrive with the
            // first assignment. Waiting for it here is the wait the request makes next anyway.
            await balancing.GetServiceAsync(cluster, XdsEndpointSourceProvider.SourceName, null, _clientOptions.Get(clientName), clientName, cancellationToken)
                .ConfigureAwait(false);
        }

        if (drops.TryDrop(cluster, _random, out var drop))
        {
            throw new ServiceOverloadedException(XdsDropOverloads.Describe(cluster, drop)) { ServiceName = cluster };
        }
    }

    private bool IsXdsClient(string clientName)
        => string.Equals(_clientOptions.Get(clientName).Source ?? _lodestarOptions.CurrentValue.DefaultSource, XdsEndpointSourceProvider.SourceName, StringComparison.OrdinalIgnoreCase);

    private async ValueTask<RequestRoute?> RouteCoreAsync(HttpRequestMessage request, string clientName, CancellationToken cancellationToken)
    {
        var source = _clientOptions.Get(clientName).Source ?? _lodestarOptions.CurrentValue.DefaultSource;
        if (!string.Equals(source, XdsEndpointSourceProvider.SourceName, StringComparison.OrdinalIgnoreCase) || request.RequestUri is not { IsAbsoluteUri: true } uri)
        {
            return null;
        }

        var listenerName = uri.Authority;
        var watch = _listeners.GetOrAdd(listenerName, static (name, self) => new Lazy<ListenerWatch>(() => new ListenerWatch(self, name)), this).Value;
        var table = watch.Table;
        if (table is null && !watch.Ready.Task.IsCompleted)
        {
            var limit = _lodestarOptions.CurrentValue.ResolutionTimeout;
            try
            {
                await watch.Ready.Task.WaitAsync(limit, _timeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException ex)
            {
                throw new HttpRequestException(string.Create(CultureInfo.InvariantCulture,
                    $"The xDS listener '{listenerName}' and its routes did not arrive from xDS server '{_clients.Client.ServerName}' within {limit.TotalSeconds} s{watch.DescribeLastError()}."), ex);
            }

            table = watch.Table;
        }

        if (table is null)
        {
            if (watch.Problem is { } problem)
            {
                throw new HttpRequestException(problem);
            }

            return null; // No such listener: the host names the cluster.
        }

        var authority = request.Headers.Host ?? listenerName;
        var path = uri.PathAndQuery;
        var match = table.Match(authority, path, name => GetHeader(request, name), _random);
        if (match is null)
        {
            throw new HttpRequestException($"No route of route configuration '{table.Name}' (xDS listener '{listenerName}') matches '{authority}{uri.AbsolutePath}'.");
        }

        if (match.Cluster is not { } cluster)
        {
            throw new HttpRequestException(
                $"Route '{match.Route.Name}' of virtual host '{match.VirtualHost.Name}' in route configuration '{table.Name}' (xDS listener '{listenerName}') redirects or answers directly; Lodestar sends requests only to clusters.");
        }

        Log.Routed(_logger, listenerName, uri.AbsolutePath, match.Route.Name, cluster);
        return new RequestRoute(cluster)
        {
            Timeout = match.Timeout,
            Retry = match.RetryPolicy is { } retry ? _retryPolicies.GetValue(retry, ToRetryPolicy) : null,
            HashKey = match.Route.Action is { HashPolicies.Count: > 0 } action ? HashKeys.Compute(action.HashPolicies, request) : null,
        };
    }

    public void Dispose()
    {
        foreach (var lazy in _listeners.Values)
        {
            if (lazy.IsValueCreated)
            {
                lazy.Value.Dispose();
            }
        }

        _listeners.Clear();
    }

    /// <summary>
    /// Maps an xDS retry policy to Lodestar's: attempts are <c>num_retries + 1</c> (at most 10); <c>5xx</c> retries
    /// 500 to 599, <c>gateway-error</c> 502, 503 and 504, <c>retriable-4xx</c> 409, <c>retriable-status-codes</c> the
    /// policy's codes; the backoff is the policy's. Connection failures and resets are retried by Lodestar's own rules.
    /// </summary>
    internal static RouteRetryPolicy ToRetryPolicy(XdsRetryPolicy policy)
    {
        var codes = new List<int>();
        foreach (var condition in policy.RetryOn)
        {
            switch (condition.Trim().ToLowerInvariant())
            {
                case "5xx":
                    codes.AddRange(Enumerable.Range(500, 100));
                    break;
                case "gateway-error":
                    codes.AddRange([502, 503, 504]);
                    break;
                case "retriable-4xx":
                    codes.Add(409);
                    break;
                case "retriable-status-codes":
                    codes.AddRange(policy.RetriableStatusCodes.Where(static c => c is >= 100 and <= 599));
                    break;
            }
        }

        var backoffBase = policy.BaseInterval > TimeSpan.FromMinutes(1) ? TimeSpan.FromMinutes(1) : policy.BaseInterval;
        var backoffMax = policy.MaxInterval < backoffBase ? backoffBase : policy.MaxInterval > TimeSpan.FromMinutes(10) ? TimeSpan.FromMinutes(10) : policy.MaxInterval;
        return new RouteRetryPolicy(Math.Clamp(policy.NumRetries + 1, 1, 10), codes, backoffBase, backoffMax,
            policy.PerTryTimeout is { } perTry && perTry > TimeSpan.Zero ? perTry : null);
    }

    private static string? GetHeader(HttpRequestMessage request, string name)
    {
        if (request.Headers.TryGetValues(name, out var values) || (request.Content is { } content && content.Headers.TryGetValues(name, out values)))
        {
            return string.Join(',', values);
        }

        return null;
    }

    /// <summary>One listener followed to its route table; created on the first request for its authority.</summary>
    private sealed class ListenerWatch : IDisposable
    {
        private readonly XdsRequestRouter _router;
        private readonly string _name;
        private readonly Lock _gate = new();
        private readonly XdsClient _client;
        private IDisposable? _listenerWatch;
        private IDisposable? _routeWatch;
        private string? _routeName;
        private volatile XdsRouteTable? _table;
        private volatile string? _problem;
        private volatile Exception? _lastError;
        private bool _disposed;

        public ListenerWatch(XdsRequestRouter router, string name)
        {
            _router = router;
            _name = name;
            _client = router._clients.Client;
            _listenerWatch = _client.Watch(ListenerDecoder.Instance, name, new XdsWatcher<XdsListenerResource>(OnListener, OnError, OnListenerMissing));
        }

        public TaskCompletionSource Ready { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Gets the current route table, or <see langword="null"/> before the first or when the listener does not exist.</summary>
        public XdsRouteTable? Table => _table;

        /// <summary>Gets why requests must fail (the route configuration does not exist), or <see langword="null"/>.</summary>
        public string? Problem => _problem;

        public string DescribeLastError() => _lastError is { } error ? " (last error: " + error.Message + ")" : string.Empty;

        public void Dispose()
        {
            IDisposable? listener, routes;
            lock (_gate)
            {
                _disposed = true;
                (listener, routes) = (_listenerWatch, _routeWatch);
                _listenerWatch = _routeWatch = null;
            }

            listener?.Dispose();
            routes?.Dispose();
        }

        private void OnListener(XdsListenerResource listener)
        {
            IDisposable? old = null;
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                if (listener.InlineRoutes is { } inline)
                {
                    old = _routeWatch;
                    _routeWatch = null;
                    _routeName = null;
                    _problem = null;
                    _table = inline;
                }
                else if (listener.RouteConfigName is { } routeName && routeName != _routeName)
                {
                    old = _routeWatch;
                    _routeName = routeName;
                    _routeWatch = _client.Watch(RouteConfigurationDecoder.Instance, routeName,
                        new XdsWatcher<XdsRouteTable>(OnRoutes, OnError, OnRoutesMissing));
                }
            }

            old?.Dispose();
            if (listener.InlineRoutes is not null)
            {
                Log.RoutesChanged(_router._logger, _name, listener.InlineRoutes.Name, listener.InlineRoutes.VirtualHosts.Count);
                Ready.TrySetResult();
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

                _problem = null;
                _table = table;
            }

            Log.RoutesChanged(_router._logger, _name, table.Name, table.VirtualHosts.Count);
            Ready.TrySetResult();
        }

        private void OnListenerMissing()
        {
            IDisposable? old;
            lock (_gate)
            {
                old = _routeWatch;
                _routeWatch = null;
                _routeName = null;
                _table = null;
                _problem = null;
            }

            old?.Dispose();
            Log.ListenerMissing(_router._logger, _name, _client.ServerName);
            Ready.TrySetResult();
        }

        private void OnRoutesMissing()
        {
            string? name;
            lock (_gate)
            {
                name = _routeName;
                _table = null;
                _problem = $"The route configuration '{name}' of xDS listener '{_name}' does not exist on xDS server '{_client.ServerName}'.";
            }

            Ready.TrySetResult();
        }

        private void OnError(Exception error)
        {
            _lastError = error;
            Log.RoutingError(_router._logger, _name, error.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(20, LogLevel.Trace, "xDS listener {Listener}: {Path} matched route {Route} to cluster {Cluster}.", EventName = "XdsRouted")]
        public static partial void Routed(ILogger logger, string listener, string path, string route, string cluster);

        [LoggerMessage(21, LogLevel.Debug, "xDS listener {Listener}: route configuration {RouteConfiguration} with {VirtualHosts} virtual hosts.", EventName = "XdsRoutesChanged")]
        public static partial void RoutesChanged(ILogger logger, string listener, string routeConfiguration, int virtualHosts);

        [LoggerMessage(22, LogLevel.Debug, "xDS listener {Listener} does not exist on xDS server {Server}; its requests go to the cluster their host names.", EventName = "XdsListenerMissing")]
        public static partial void ListenerMissing(ILogger logger, string listener, string server);

        [LoggerMessage(23, LogLevel.Debug, "xDS listener {Listener}: {Error} The last accepted routes stay in force.", EventName = "XdsRoutingError")]
        public static partial void RoutingError(ILogger logger, string listener, string error);
    }
}
