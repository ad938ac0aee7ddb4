using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Router.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Cluster = Envoy.Config.Cluster.V3.Cluster;

namespace Lodestar.Xds.Tests.Infrastructure;

/// <summary>Builds envoy resources for tests, the way a control plane such as Istio writes them.</summary>
internal static class XdsResources
{
    public static Cluster EdsCluster(string name, string? serviceName = null, Cluster.Types.LbPolicy policy = Cluster.Types.LbPolicy.RoundRobin) => new()
    {
        Name = name,
        Type = Cluster.Types.DiscoveryType.Eds,
        EdsClusterConfig = new Cluster.Types.EdsClusterConfig
        {
            EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 },
            ServiceName = serviceName ?? string.Empty,
        },
        LbPolicy = policy,
        ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)),
    };

    public static ClusterLoadAssignment Assignment(string cluster, params (string Host, int Port)[] endpoints)
        => Assignment(cluster, Locality("zone-a", 1, 0, [.. endpoints.Select(e => Endpoint(e.Host, e.Port))]));

    public static ClusterLoadAssignment Assignment(string cluster, params LocalityLbEndpoints[] localities)
    {
        var assignment = new ClusterLoadAssignment { ClusterName = cluster };
        assignment.Endpoints.AddRange(localities);
        return assignment;
    }

    public static LocalityLbEndpoints Locality(string zone, uint weight, uint priority, params LbEndpoint[] endpoints)
    {
        var locality = new LocalityLbEndpoints
        {
            Locality = new Locality { Region = "region-1", Zone = zone, SubZone = zone + "-sub" },
            LoadBalancingWeight = weight,
            Priority = priority,
        };
        locality.LbEndpoints.AddRange(endpoints);
        return locality;
    }

    public static LbEndpoint Endpoint(string host, int port, uint? weight = null, HealthStatus health = HealthStatus.Healthy) => new()
    {
        Endpoint = new Envoy.Config.Endpoint.V3.Endpoint
        {
            Address = new Address { SocketAddress = new SocketAddress { Address = host, PortValue = (uint)port } },
        },
        HealthStatus = health,
        LoadBalancingWeight = weight,
    };

    public static Listener ApiListener(string name, string routeConfigName)
    {
        var hcm = new HttpConnectionManager
        {
            Rds = new Rds { RouteConfigName = routeConfigName, ConfigSource = new ConfigSource { Ads = new AggregatedConfigSource() } },
        };
        hcm.HttpFilters.Add(new HttpFilter { Name = "envoy.filters.http.router", TypedConfig = Any.Pack(new Router()) });
        return new Listener { Name = name, ApiListener = new Envoy.Config.Listener.V3.ApiListener { ApiListener_ = Any.Pack(hcm) } };
    }

    public static Listener ApiListener(string name, RouteConfiguration inline)
    {
        var hcm = new HttpConnectionManager { RouteConfig = inline };
        hcm.HttpFilters.Add(new HttpFilter { Name = "envoy.filters.http.router", TypedConfig = Any.Pack(new Router()) });
        return new Listener { Name = name, ApiListener = new Envoy.Config.Listener.V3.ApiListener { ApiListener_ = Any.Pack(hcm) } };
    }

    public static RouteConfiguration Routes(string name, params VirtualHost[] hosts)
    {
        var config = new RouteConfiguration { Name = name };
        config.VirtualHosts.AddRange(hosts);
        return config;
    }

    public static VirtualHost Host(string name, string[] domains, params Route[] routes)
    {
        var host = new VirtualHost { Name = name };
        host.Domains.AddRange(domains);
        host.Routes.AddRange(routes);
        return host;
    }

    public static Route PrefixRoute(string prefix, string cluster) => new()
    {
        Match = new RouteMatch { Prefix = prefix },
        Route_ = new RouteAction { Cluster = cluster },
    };
}
