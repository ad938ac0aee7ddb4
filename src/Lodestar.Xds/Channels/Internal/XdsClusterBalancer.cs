using System.Runtime.CompilerServices;
using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Lodestar.Discovery;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.Xds.Clusters;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Discovery.Internal;
using Lodestar.Xds.Endpoints.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// The balancer of an <c>xds:///</c> channel: a subchannel per address of every cluster the routes name, and a picker
/// that routes each call (path and metadata) to a cluster, weighted clusters included, then asks Lodestar's balancer of
/// that cluster which endpoint takes it.
/// </summary>
/// <remarks>
/// Each cluster is balanced by the same <see cref="IServiceBalancing"/> stage the <c>HttpClient</c> path uses for the
/// service of that name and source <c>xds</c>, so the cluster's CDS policy, outlier detection and health apply.
/// The channel's resolver and a cluster's balancer hear of an EDS push one after the other: a call picked in between
/// (the balancer chooses an endpoint the channel no longer connects to) is queued, and the balancer publishes a new
/// picker when the cluster's balancer applies the set (<see cref="BalancedService.RegisterSetChanged"/>), as it does
/// when the channel's subchannels change, so the call is picked again as soon as the two agree.
/// </remarks>
internal sealed partial class XdsClusterBalancer : RepublishingLoadBalancer
{
    private readonly IServiceBalancing _balancing;
    private readonly XdsClusterOptions _clusterOptions;
    private readonly XdsClusterCallCounters _counters;
    private readonly Func<double> _random;
    private readonly XdsDropOverloads? _drops;
    private readonly ILogger _logger;
    private Dictionary<string, ClusterBalancer> _clusters = new(StringComparer.Ordinal);
    private XdsChannelRoutes? _routes;
    private bool _disposed;

    public XdsClusterBalancer(IChannelControlHelper controller, ILoggerFactory loggerFactory, IServiceBalancing balancing, XdsClusterOptions clusterOptions,
        XdsClusterCallCounters counters, Func<double> random, XdsDropOverloads? drops = null)
        : this(new SubchannelRecorder(controller), loggerFactory, balancing, clusterOptions, counters, random, drops)
    {
    }

    private XdsClusterBalancer(SubchannelRecorder controller, ILoggerFactory loggerFactory, IServiceBalancing balancing, XdsClusterOptions clusterOptions,
        XdsClusterCallCounters counters, Func<double> random, XdsDropOverloads? drops)
        : base(controller, loggerFactory)
    {
        _drops = drops;
        _balancing = balancing;
        _clusterOptions = clusterOptions;
        _counters = counters;
        _random = random;
        _logger = loggerFactory.CreateLogger("Lodestar.Xds.Balancer");
    }

    public override void UpdateChannelState(ChannelState state)
    {
        if (state.Status.StatusCode == StatusCode.OK && state.Addresses is { Count: > 0 } addresses)
        {
            List<string> added = [];
            List<ClusterBalancer> dropped;
            lock (Gate)
            {
                var clusters = new Dictionary<string, ClusterBalancer>(StringComparer.Ordinal);
                foreach (var address in addresses)
                {
                    if (address.Attributes.TryGetValue(XdsChannelRoutes.Key, out var routes))
                    {
                        _routes = routes;
                    }

                    if (!address.Attributes.TryGetValue(XdsChannelRoutes.ClusterKey, out var cluster) || clusters.ContainsKey(cluster))
                    {
                        continue;
                    }

                    if (_clusters.TryGetValue(cluster, out var known) && known.Failure is null)
                    {
                        clusters.Add(cluster, known);
                    }
                    else
                    {
                        clusters.Add(cluster, new ClusterBalancer(cluster, _counters.For(cluster), _clusterOptions));
                        added.Add(cluster);
                    }
                }

                // One reference write: pickers built from now on see the new map; older ones keep theirs.
                dropped = [.. _clusters.Values.Where(c => !clusters.TryGetValue(c.Name, out var kept) || kept != c)];
                _clusters = clusters;
                Changed_NeedsLock();
            }

            foreach (var cluster in dropped)
            {
                cluster.StopWatching();
            }

            foreach (var cluster in added)
            {
                Connect(cluster);
            }
        }

        base.UpdateChannelState(state);
    }

    protected override SubchannelPicker BuildPicker(IReadOnlyList<Subchannel> ready)
    {
        lock (Gate)
        {
            return NewPicker_NeedsLock(ready);
        }
    }

    protected override void Dispose(bool disposing)
    {
        ClusterBalancer[] clusters;
        lock (Gate)
        {
            _disposed = true;
            clusters = [.. _clusters.Values];
        }

        foreach (var cluster in clusters)
        {
            cluster.StopWatching();
        }

        base.Dispose(disposing);
    }

    private XdsClusterPicker NewPicker_NeedsLock(IReadOnlyList<Subchannel> ready) => new(_routes, _clusters, ready, _random, _drops);

    protected override SubchannelPicker? BuildToPublish_NeedsLock() => _disposed ? null : NewPicker_NeedsLock(Ready);

    private void Connect(string cluster)
    {
        ValueTask<BalancedService> pending;
        try
        {
            pending = _balancing.GetServiceAsync(cluster, XdsEndpointSourceProvider.SourceName);
        }
        catch (Exception ex)
        {
            OnConnected(cluster, null, ex);
            return;
        }

        if (pending.IsCompletedSuccessfully)
        {
            OnConnected(cluster, pending.Result, null);
            return;
        }

        _ = CompleteAsync(this, cluster, pending);

        static async Task CompleteAsync(XdsClusterBalancer self, string cluster, ValueTask<BalancedService> pending)
        {
            try
            {
                self.OnConnected(cluster, await pending.ConfigureAwait(false), null);
            }
            catch (Exception ex)
            {
                self.OnConnected(cluster, null, ex);
            }
        }
    }

    private void OnConnected(string cluster, BalancedService? service, Exception? error)
    {
        ClusterBalancer? balancer;
        lock (Gate)
        {
            if (_disposed || !_clusters.TryGetValue(cluster, out balancer))
            {
                return;
            }

            if (error is not null)
            {
                var message = SecretRedactor.Default.Redact(error.Message) ?? string.Empty;
                balancer.Failure = new Status(StatusCode.Unavailable, $"The xDS channel cannot balance cluster '{cluster}': {message}");
                Log.ClusterFailed(_logger, cluster, message);
            }
            else
            {
                balancer.Service = service;
            }
        }

        if (service is not null)
        {
            // Registered outside the lock: the callback takes it. A set applied between the lookup and here is read by
            // the picker published below, which asks the cluster's balancer when it picks.
            balancer.Watch(service.RegisterSetChanged(() => OnSetChanged(balancer)));
        }

        // Calls queued for this cluster are picked again with the new picker.
        Publish();
    }

    /// <summary>The cluster's balancer applied a newer set: calls waiting for it are picked again with a new picker.</summary>
    private void OnSetChanged(ClusterBalancer balancer)
    {
        lock (Gate)
        {
            if (_disposed || !_clusters.TryGetValue(balancer.Name, out var current) || current != balancer)
            {
                return;
            }
        }

        // Not on this thread: it applied the set for every channel of the cluster, and may hold another channel's lock.
        ThreadPool.UnsafeQueueUserWorkItem(static self => self.Publish(), this, preferLocal: false);
    }

    private static partial class Log
    {
        [LoggerMessage(63, LogLevel.Warning, "The xDS channel cannot balance cluster {Cluster}: {Error}", EventName = "XdsChannelClusterFailed")]
        public static partial void ClusterFailed(ILogger logger, string cluster, string error);
    }
}

/// <summary>Lodestar's balancer of one cluster once it exists, or why it cannot; written once, read by pickers.</summary>
internal sealed class ClusterBalancer(string name, XdsClusterCallCounters.Counter calls, XdsClusterOptions clusterOptions)
{
    private volatile BalancedService? _service;
    private volatile StrongBox<Status>? _failure;
    private readonly Lock _gate = new();
    private IDisposable? _setChanged;
    private bool _stopped;

    public string Name { get; } = name;

    /// <summary>Gets the cluster's calls in flight over every channel.</summary>
    public XdsClusterCallCounters.Counter Calls { get; } = calls;

    /// <summary>Gets the cluster's <c>max_requests</c> (DEFAULT priority; Envoy's default 1,024 when the cluster sets none or is not known yet).</summary>
    public long MaxRequests => clusterOptions.TryGet(Name, out var settings) ? settings.CircuitBreakers.MaxRequests : XdsCircuitBreakers.Default.MaxRequests;

    /// <summary>Gets the cluster's <c>max_retries</c> (DEFAULT priority; Envoy's default 3 when the cluster sets none or is not known yet).</summary>
    public long MaxRetries => clusterOptions.TryGet(Name, out var settings) ? settings.CircuitBreakers.MaxRetries : XdsCircuitBreakers.Default.MaxRetries;

    public BalancedService? Service
    {
        get => _service;
        set => _service = value;
    }

    public Status? Failure
    {
        get => _failure?.Value;
        set => _failure = value is { } status ? new StrongBox<Status>(status) : null;
    }

    /// <summary>Keeps the registration for the balancer's set changes until <see cref="StopWatching"/>; disposes it if that came first.</summary>
    public void Watch(IDisposable registration)
    {
        lock (_gate)
        {
            if (!_stopped && _setChanged is null)
            {
                _setChanged = registration;
                return;
            }
        }

        registration.Dispose();
    }

    /// <summary>Ends the set-change registration: the channel dropped the cluster or was disposed.</summary>
    public void StopWatching()
    {
        IDisposable? registration;
        lock (_gate)
        {
            _stopped = true;
            registration = _setChanged;
            _setChanged = null;
        }

        registration?.Dispose();
    }
}
