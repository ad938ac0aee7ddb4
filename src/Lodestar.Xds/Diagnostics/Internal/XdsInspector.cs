using System.Globalization;
using Lodestar.Xds.Client;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Clusters;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Endpoints;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Listeners;
using Lodestar.Xds.Listeners.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Routing;
using Lodestar.Xds.Routing.Internal;

namespace Lodestar.Xds.Diagnostics.Internal;

/// <summary>Subscribes through the process's one xDS client, follows listeners to routes and clusters to endpoints, and reads the client's state.</summary>
internal sealed class XdsInspector(XdsClientProvider provider, TimeProvider timeProvider) : IXdsInspector
{
    public async Task<XdsInspection> InspectAsync(IReadOnlyCollection<string>? listeners, IReadOnlyCollection<string>? clusters, TimeSpan collectFor,
        CancellationToken cancellationToken)
    {
        var client = provider.Client;
        using var follower = new Follower(client);
        foreach (var name in listeners is { Count: > 0 } ? listeners : [XdsClient.Wildcard])
        {
            follower.Watch(ListenerDecoder.Instance, name);
        }

        foreach (var name in clusters is { Count: > 0 } ? clusters : [XdsClient.Wildcard])
        {
            follower.Watch(ClusterDecoder.Instance, name);
        }

        try
        {
            await Task.Delay(collectFor, timeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }

        return ToInspection(client.ServerName, client.Dump());
    }

    private static XdsInspection ToInspection(string server, IReadOnlyList<XdsTypeDump> types)
    {
        var typeDtos = types.Select(t => new XdsTypeInspection(XdsTypeUrls.ShortName(t.TypeUrl), t.TypeUrl, t.AcceptedVersion, t.Wildcard,
            t.LastNack is { } n ? new XdsNackInspection(n.Version, n.Nonce, n.Message, n.At) : null)).ToList();
        var resources = types.SelectMany(t => t.Resources.Select(r => new XdsResourceInspection(XdsTypeUrls.ShortName(t.TypeUrl), r.Name, r.Status, r.Version ?? (r.Value is null || t.AcceptedVersion.Length == 0 ? null : t.AcceptedVersion), Summary(r.Value))))
            .ToList();
        return new XdsInspection(server, typeDtos, resources);
    }

    private static string Summary(object? value) => value switch
    {
        XdsListenerResource { InlineRoutes: { } inline } => $"inline routes '{inline.Name}': {Routes(inline)}",
        XdsListenerResource listener => $"RDS '{listener.RouteConfigName}'",
        XdsRouteTable table => Routes(table),
        XdsClusterSettings { Kind: XdsClusterKind.Static } cluster => $"STATIC, {cluster.Policy}",
        XdsClusterSettings cluster => $"EDS '{cluster.EdsServiceName}', {cluster.Policy}" + (cluster.OutlierDetection is null ? string.Empty : ", outlier detection"),
        XdsEndpointAssignment assignment => string.Create(CultureInfo.InvariantCulture,
            $"{assignment.RoutableEndpoints.Count} routable endpoints in {assignment.Localities.Count} localities: {string.Join(", ", assignment.RoutableEndpoints.Take(5).Select(e => e.Address))}{(assignment.RoutableEndpoints.Count > 5 ? ", …" : string.Empty)}"),
        null => "-",
        _ => value.GetType().Name,
    };

    private static string Routes(XdsRouteTable table)
        => string.Create(CultureInfo.InvariantCulture, $"{table.VirtualHosts.Count} virtual hosts, {table.VirtualHosts.Sum(h => h.Routes.Count)} routes");

    /// <summary>Keeps the watches: every listener followed to its route configuration, every cluster to its endpoints.</summary>
    private sealed class Follower(XdsClient client) : IDisposable
    {
        private readonly List<IDisposable> _watches = [];
        private readonly HashSet<(string, string)> _watched = [];

        public void Watch(XdsResourceType type, string name)
        {
            lock (_watches)
            {
                if (!_watched.Add((type.TypeUrl, name)))
                {
                    return;
                }
            }

            var watch = client.Watch(type, name, new XdsWatcher<object>(OnResource));
            lock (_watches)
            {
                _watches.Add(watch);
            }
        }

        public void Dispose()
        {
            lock (_watches)
            {
                foreach (var watch in _watches)
                {
                    watch.Dispose();
                }

                _watches.Clear();
            }
        }

        private void OnResource(object resource)
        {
            foreach (var value in resource is XdsResourceSet set ? set.Resources.Values : [resource])
            {
                switch (value)
                {
                    case XdsListenerResource { RouteConfigName: { } routes }:
                        Watch(RouteConfigurationDecoder.Instance, routes);
                        break;
                    case XdsClusterSettings { Kind: XdsClusterKind.Eds } cluster:
                        Watch(EndpointAssignmentDecoder.Instance, cluster.EdsServiceName);
                        break;
                }
            }
        }
    }
}
