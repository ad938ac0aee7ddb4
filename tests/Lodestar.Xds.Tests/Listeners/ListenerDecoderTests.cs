using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Listeners;
using Lodestar.Xds.Listeners.Internal;
using Lodestar.Xds.Resources;
using Lodestar.Xds.Routing;
using Lodestar.Xds.Routing.Internal;
using Lodestar.Xds.Tests.Infrastructure;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Listeners;

public sealed class ListenerDecoderTests
{
    [Fact]
    public void Map_ApiListenerWithRds_NamesTheRouteConfiguration()
    {
        var listener = ListenerDecoder.Map(ApiListener("orders.default.svc.cluster.local:8080", "routes-orders"));

        Assert.Equal("routes-orders", listener.RouteConfigName);
        Assert.Null(listener.InlineRoutes);
    }

    [Fact]
    public void Map_InlineRouteConfiguration_IsValidatedAndKept()
    {
        var listener = ListenerDecoder.Map(ApiListener("orders", Routes("inline", Host("h", ["*"], PrefixRoute("/", "orders-cluster")))));

        Assert.Null(listener.RouteConfigName);
        Assert.Equal("orders-cluster", listener.InlineRoutes!.Match("orders", "/", static _ => null, static () => 0)!.Cluster);
    }

    [Theory]
    [InlineData("no-api", "api_listener is missing")]
    [InlineData("not-hcm", "api_listener has type 'type.googleapis.com/google.protobuf.Duration', expected an HttpConnectionManager")]
    [InlineData("rds-source", "api_listener.rds.config_source must be 'ads' or 'self'")]
    [InlineData("no-router", "the last HTTP filter 'envoy.filters.http.fault' is not the router")]
    [InlineData("inline-invalid", "api_listener.route_config: virtual_hosts[0] ('h') has no domains")]
    public void Decode_InvalidListener_IsRejectedNamingTheField(string kind, string expected)
    {
        Listener listener;
        switch (kind)
        {
            case "no-api":
                listener = new Listener { Name = "l" };
                break;
            case "not-hcm":
                listener = new Listener { Name = "l", ApiListener = new ApiListener { ApiListener_ = Any.Pack(new Duration()) } };
                break;
            case "rds-source":
                var hcm = new HttpConnectionManager { Rds = new Rds { RouteConfigName = "r", ConfigSource = new ConfigSource { Path = "/rds" } } };
                listener = new Listener { Name = "l", ApiListener = new ApiListener { ApiListener_ = Any.Pack(hcm) } };
                break;
            case "no-router":
                var faulty = new HttpConnectionManager { Rds = new Rds { RouteConfigName = "r", ConfigSource = new ConfigSource { Ads = new AggregatedConfigSource() } } };
                faulty.HttpFilters.Add(new HttpFilter { Name = "envoy.filters.http.fault", TypedConfig = Any.Pack(new Empty()) });
                listener = new Listener { Name = "l", ApiListener = new ApiListener { ApiListener_ = Any.Pack(faulty) } };
                break;
            default:
                listener = ApiListener("l", Routes("inline", Host("h", [])));
                break;
        }

        var result = ListenerDecoder.Instance.Decode(Any.Pack(listener));

        Assert.Null(result.Resource);
        Assert.StartsWith($"Listener 'l': {expected}", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_ListenerThenRoutes_ClientFollowsLdsToRds()
    {
        await using var h = await ClientHarness.StartAsync();
        h.Server.SetResource(XdsTypeUrls.Listener, "orders", ApiListener("orders", "routes-orders"));
        h.Server.SetResource(XdsTypeUrls.RouteConfiguration, "routes-orders", Routes("routes-orders", Host("h", ["orders"], PrefixRoute("/", "outbound|80||orders"))));
        var listeners = new RecordingWatcher();
        using var lds = h.Client.Watch(ListenerDecoder.Instance, "orders", listeners);

        var listener = await listeners.NextChangeAsync<XdsListenerResource>();
        var routes = new RecordingWatcher();
        using var rds = h.Client.Watch(RouteConfigurationDecoder.Instance, listener.RouteConfigName!, routes);
        var table = await routes.NextChangeAsync<XdsRouteTable>();

        Assert.Equal("outbound|80||orders", table.Match("orders", "/api", static _ => null, static () => 0)!.Cluster);
    }
}
