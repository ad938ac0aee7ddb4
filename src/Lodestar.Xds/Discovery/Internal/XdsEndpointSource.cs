using System.Net;
using System.Net.Sockets;
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
/// (EDS under the cluster's service name, the cluster's own <c>load_assignment</c>, or for a <c>LOGICAL_DNS</c> cluster
/// the first address its host name resolves to, resolved again every <c>dns_refresh_rate</c>), and every accepted
/// update is published as the complete set of routable endpoints.
/// </summary>
/// <remarks>
/// The ADS client owns the stream, its reconnects and backoff; this source only subscribes and translates. Errors
/// (a stream failure, a rejected update) are reported beside the last published set, which stays in force. A cluster
/// or endpoint resource that does not exist publishes an empty set and reports why. A failed or empty DNS resolution
/// is reported and keeps the last resolved address.
/// </remarks>
internal sealed partial class XdsEndpointSource : IEndpointSource
{
    private readonly string _clusterName;
    private readonly XdsClientProvider _clients;
    private readonly ILogger _logger;
    private readonly XdsClusterOptions? _clusterOptions;
    private readonly XdsDropOverloads? _drops;
    private readonly TimeProvider _timeProvider;
    private readonly Func<string, CancellationToken, Task<IPAddress[]>> _resolveHost;

    public XdsEndpointSource(string clusterName, XdsClientProvider clients, ILogger logger, XdsClusterOptions? clusterOptions = null, XdsDropOverloads? drops = null,
        TimeProvider? timeProvider = null, Func<string, CancellationToken, Task<IPAddress[]>>? resolveHost = null)
    {
        _clusterName = clusterName;
        _clients = clients;
        _logger = logger;
        _clusterOptions = clusterOptions;
        _drops = drops;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _resolveHost = resolveHost ?? Dns.GetHostAddressesAsync;
    }

    /// <summary>Picks the address a <c>LOGICAL_DNS</c> cluster uses: the first of the lookup family's preferred kind.</summary>
    internal static IPAddress? PickAddress(IReadOnlyList<IPAddress> addresses, XdsDnsLookupFamily family)
    {
        IPAddress? First(AddressFamily kind)
        {
            foreach (var address in addresses)
            {
                if (address.AddressFamily == kind)
                {
                    return address;
                }
            }

            return null;
        }

        return family switch
        {
            XdsDnsLookupFamily.V4Only => First(AddressFamily.InterNetwork),
            XdsDnsLookupFamily.V6Only => First(AddressFamily.InterNetworkV6),
            XdsDnsLookupFamily.V4Preferred => First(AddressFamily.InterNetwork) ?? First(AddressFamily.InterNetworkV6),
            XdsDnsLookupFamily.All => addresses.FirstOrDefault(static a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6),
            _ => First(AddressFamily.InterNetworkV6) ?? First(AddressFamily.InterNetwork),
        };
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
        private CancellationTokenSource? _dnsLoop;
        private (string? Host, int Port, TimeSpan Rate, XdsDnsLookupFamily Family) _dnsKey;
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
                StopDnsLoop();
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
            CancellationTokenSource? dnsLoop = null;
            lock (_gate)
            {
                if (_stopped)
                {
                    return;
                }

                if (cluster.Kind != XdsClusterKind.LogicalDns)
                {
                    StopDnsLoop();
                }

                if (cluster.Kind is XdsClusterKind.Static or XdsClusterKind.LogicalDns)
                {
                    old = _endpointWatch;
                    _endpointWatch = null;
                    _edsName = null;
                    var key = (cluster.DnsHost, cluster.DnsPort, cluster.DnsRefreshRate, cluster.DnsLookupFamily);
                    if (cluster.Kind == XdsClusterKind.LogicalDns && (_dnsLoop is null || _dnsKey != key))
                    {
                        StopDnsLoop();
                        _dnsKey = key;
                        dnsLoop = _dnsLoop = new CancellationTokenSource();
                    }
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

            if (dnsLoop is not null)
            {
                SetDrops([]);
                _ = ResolveLoopAsync(cluster, dnsLoop.Token);
            }
        }

        private void StopDnsLoop()
        {
            _dnsLoop?.Cancel();
            _dnsLoop?.Dispose();
            _dnsLoop = null;
        }

        private async Task ResolveLoopAsync(XdsClusterSettings cluster, CancellationToken cancellationToken)
        {
            var host = cluster.DnsHost!;
            IPAddress? current = null;
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    var addresses = await _source._resolveHost(host, cancellationToken).ConfigureAwait(false);
                    var address = PickAddress(addresses, cluster.DnsLookupFamily)
                        ?? throw new XdsClientException($"'{host}' resolved to no address of lookup family {cluster.DnsLookupFamily}.");
                    if (!address.Equals(current))
                    {
                        if (!DiscoveredEndpoint.TryCreate(address.ToString(), cluster.DnsPort, null, 1, null, null, 0, out var endpoint, out var error))
                        {
                            throw new XdsClientException($"'{host}' resolved to {address}, which is not a valid endpoint: {error}");
                        }

                        Log.DnsResolved(_source._logger, _source._clusterName, host, address.ToString());

                        // Under the gate: once a newer cluster update has stopped this loop, it publishes nothing.
                        lock (_gate)
                        {
                            if (cancellationToken.IsCancellationRequested)
                            {
                                return;
                            }

                            current = address;
                            Publish([endpoint]);
                        }
                    }
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    var what = current is null ? "the cluster has no endpoint yet" : $"keeping {current}";
                    var reason = ex is XdsClientException ? ex.Message : $"{ex.GetType().Name}: {ex.Message}";
                    if (!cancellationToken.IsCancellationRequested)
                    {
                        OnError(new XdsClientException($"Cluster '{_source._clusterName}': resolving LOGICAL_DNS host '{host}' failed ({what}): {reason}", ex));
                    }
                }

                try
                {
                    await Task.Delay(cluster.DnsRefreshRate, _source._timeProvider, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
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
                StopDnsLoop();
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

        [LoggerMessage(3, LogLevel.Debug, "xDS cluster {Cluster}: LOGICAL_DNS host {Host} resolved to {Address}.", EventName = "XdsLogicalDnsResolved")]
        public static partial void DnsResolved(ILogger logger, string cluster, string host, string address);
    }
}
