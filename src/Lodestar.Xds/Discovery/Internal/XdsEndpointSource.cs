using Lodestar.Discovery;
using Lodestar.Endpoints;
using Lodestar.Xds.Client;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Clusters;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Endpoints;
using Lodestar.Xds.Endpoints.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Xds.Discovery.Internal;

/// <summary>
/// Follows one xDS cluster by name through the shared ADS client: the CDS resource says where the endpoints come from
/// (EDS under the cluster's service name, or the cluster's own <c>load_assignment</c>), and every accepted EDS update
/// is published as the complete set of routable endpoints.
/// </summary>
/// <remarks>
/// The ADS client owns the stream, its reconnects and backoff; this source only subscribes and translates. Errors
/// (a stream failure, a rejected update) are reported beside the last published set, which stays in force. A cluster
/// or endpoint resource that does not exist publishes an empty set and reports why.
/// </remarks>
internal sealed partial class XdsEndpointSource : IEndpointSource
{
    private readonly string _clusterName;
    private readonly XdsClientProvider _clients;
    private readonly ILogger _logger;
    private readonly XdsClusterOptions? _clusterOptions;
    private readonly XdsDropOverloads? _drops;

    public XdsEndpointSource(string clusterName, XdsClientProvider clients, ILogger logger, XdsClusterOptions? clusterOptions = null, XdsDropOverloads? drops = null)
    {
        _clusterName = clusterName;
        _clients = clients;
        _logger = logger;
        _clusterOptions = clusterOptions;
        _drops = drops;
    }

    public async Task RunAsync(IEndpointObserver observer, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(observer);
        XdsClient client;
        try
        {
            client = _clients.Client;
        }
        catch (Exception ex)
        {
            observer.OnError(ex);
            return;
        }

        // Every cluster's endpoints ride the one ADS stream: each reopening of it is a reconnect of this source too.
        using var reconnects = observer is IEndpointReconnectObserver counter ? client.OnReconnect(counter.OnReconnect) : null;
        using var follower = new Follower(this, client, observer);
        follower.Start();
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private sealed class Follower : IDisposable
    {
        private readonly XdsEndpointSource _source;
        private readonly XdsClient _client;
        private readonly IEndpointObserver _observer;
        private readonly Lock _gate = new();
        private IDisposable? _clusterWatch;
        private IDisposable? _endpointWatch;
        private string? _edsName;
        private IReadOnlyList<XdsDropOverload>? _dropsSet;
        private bool _stopped;

        public Follower(XdsEndpointSource source, XdsClient client, IEndpointObserver observer)
        {
            _source = source;
            _client = client;
            _observer = observer;
        }

        public void Start()
        {
            var watch = _client.Watch(ClusterDecoder.Instance, _source._clusterName,
                new XdsWatcher<XdsClusterSettings>(OnCluster, OnError, OnClusterMissing));
            lock (_gate)
            {
                _clusterWatch = watch;
            }
        }

        public void Dispose()
        {
            IDisposable? cluster, endpoints;
            lock (_gate)
            {
                _stopped = true;
                cluster = _clusterWatch;
                endpoints = _endpointWatch;
                _clusterWatch = _endpointWatch = null;
            }

            cluster?.Dispose();
            endpoints?.Dispose();
            _source._clusterOptions?.Update(_source._clusterName, null);
            if (Volatile.Read(ref _dropsSet) is { } drops)
            {
                _source._drops?.Remove(_source._clusterName, drops);
            }
        }

        private void OnCluster(XdsClusterSettings cluster)
        {
            IDisposable? old = null;
            IDisposable? created = null;
            lock (_gate)
            {
                if (_stopped)
                {
                    return;
                }

                if (cluster.Kind == XdsClusterKind.Static)
                {
                    old = _endpointWatch;
                    _endpointWatch = null;
                    _edsName = null;
                }
                else if (_edsName != cluster.EdsServiceName)
                {
                    old = _endpointWatch;
                    _edsName = cluster.EdsServiceName;
                    created = _endpointWatch = _client.Watch(EndpointAssignmentDecoder.Instance, cluster.EdsServiceName,
                        new XdsWatcher<XdsEndpointAssignment>(OnEndpoints, OnError, OnEndpointsMissing));
                }
            }

            old?.Dispose();

            // Before the endpoints: the first balancer built for them should already see the cluster's policy.
            _source._clusterOptions?.Update(_source._clusterName, cluster);
            Log.ClusterChanged(_source._logger, _source._clusterName, cluster.Kind.ToString(), cluster.EdsServiceName, cluster.Policy);
            if (cluster.Kind == XdsClusterKind.Static && cluster.InlineAssignment is { } inline)
            {
                SetDrops(inline.DropOverloads);
                Publish(inline.RoutableEndpoints);
            }
        }

        private void OnEndpoints(XdsEndpointAssignment assignment)
        {
            lock (_gate)
            {
                if (_stopped || assignment.ClusterName != _edsName)
                {
                    return;
                }
            }

            Log.EndpointsChanged(_source._logger, _source._clusterName, assignment.RoutableEndpoints.Count);

            // Before the endpoints: a balancer that has them already applies their drops.
            SetDrops(assignment.DropOverloads);
            Publish(assignment.RoutableEndpoints);
        }

        private void OnClusterMissing()
        {
            IDisposable? old;
            lock (_gate)
            {
                if (_stopped)
                {
                    return;
                }

                old = _endpointWatch;
                _endpointWatch = null;
                _edsName = null;
            }

            old?.Dispose();
            _source._clusterOptions?.Update(_source._clusterName, null);
            SetDrops([]);
            Publish([]);
            OnError(new XdsClientException($"Cluster '{_source._clusterName}' does not exist on xDS server '{_client.ServerName}'."));
        }

        private void OnEndpointsMissing()
        {
            string? name;
            lock (_gate)
            {
                if (_stopped)
                {
                    return;
                }

                name = _edsName;
            }

            SetDrops([]);
            Publish([]);
            OnError(new XdsClientException($"The endpoints '{name}' of cluster '{_source._clusterName}' do not exist on xDS server '{_client.ServerName}'."));
        }

        private void SetDrops(IReadOnlyList<XdsDropOverload> drops)
        {
            if (_source._drops is { } registry && !Volatile.Read(ref _stopped))
            {
                Volatile.Write(ref _dropsSet, drops);
                registry.Set(_source._clusterName, drops);
            }
        }

        private void Publish(IReadOnlyList<DiscoveredEndpoint> endpoints)
        {
            if (!Volatile.Read(ref _stopped))
            {
                _observer.OnEndpoints(endpoints);
            }
        }

        private void OnError(Exception error)
        {
            if (!Volatile.Read(ref _stopped))
            {
                _observer.OnError(error);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "xDS cluster {Cluster}: {Kind} (EDS name {EdsName}), policy {Policy}.", EventName = "XdsClusterChanged")]
        public static partial void ClusterChanged(ILogger logger, string cluster, string kind, string edsName, string policy);

        [LoggerMessage(2, LogLevel.Debug, "xDS cluster {Cluster}: {Count} routable endpoints.", EventName = "XdsEndpointsChanged")]
        public static partial void EndpointsChanged(ILogger logger, string cluster, int count);
    }
}
