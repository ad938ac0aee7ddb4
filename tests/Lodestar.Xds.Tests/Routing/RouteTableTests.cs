using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Xds.Routing;
using Lodestar.Xds.Routing.Internal;
using static Lodestar.Xds.Tests.Infrastructure.XdsResources;

namespace Lodestar.Xds.Tests.Routing;

public sealed class RouteTableTests
{
    private static readonly Func<string, string?> s_noHeaders = static _ => null;
    private static readonly Func<double> s_random = static () => 0.5;

    [Theory]
    [InlineData("api.example.com", "exact")]
    [InlineData("API.Example.Com", "exact")]
    [InlineData("api.example.com:8080", "any")]
    [InlineData("www.example.com", "suffix-long")]
    [InlineData("x.other.com", "suffix-short")]
    [InlineData("example.org", "prefix")]
    [InlineData("other", "any")]
    public void FindVirtualHost_DomainSearchOrder_ExactThenSuffixThenPrefixThenAny(string authority, string expected)
    {
        var table = RouteConfigurationDecoder.Map(Routes("r",
            Host("any", ["*"]),
            Host("prefix", ["example.*"]),
            Host("suffix-short", ["*.com"]),
            Host("suffix-long", ["*.example.com"]),
            Host("exact", ["api.example.com"])));

        Assert.Equal(expected, table.FindVirtualHost(authority)!.Name);
    }

    [Fact]
    public void FindVirtualHost_AuthorityWithPortAndNoMatch_TriesTheHostWithoutPort()
    {
        var table = RouteConfigurationDecoder.Map(Routes("r", Host("orders", ["orders"]), Host("orders-8080", ["orders:8080"])));

        Assert.Equal("orders-8080", table.FindVirtualHost("orders:8080")!.Name);
        Assert.Equal("orders", table.FindVirtualHost("orders:9090")!.Name);
        Assert.Null(table.FindVirtualHost("billing:8080"));
    }

    [Fact]
    public void Match_PathPrefixRegexAndCaseSensitivity_FirstMatchingRouteWins()
    {
        var exact = new Route { Match = new RouteMatch { Path = "/orders/list" }, Route_ = new RouteAction { Cluster = "exact" } };
        var regex = new Route
        {
            Match = new RouteMatch { SafeRegex = new RegexMatcher { GoogleRe2 = new RegexMatcher.Types.GoogleRE2(), Regex = "/orders/[0-9]+" } },
            Route_ = new RouteAction { Cluster = "by-id" },
        };
        var insensitive = new Route { Match = new RouteMatch { Prefix = "/ADMIN", CaseSensitive = false }, Route_ = new RouteAction { Cluster = "admin" } };
        var table = RouteConfigurationDecoder.Map(Routes("r", Host("h", ["*"], exact, regex, insensitive, PrefixRoute("/", "default"))));

        Assert.Equal("exact", Cluster(table, "/orders/list?page=2"));
        Assert.Equal("by-id", Cluster(table, "/orders/42"));
        Assert.Equal("default", Cluster(table, "/orders/42x"));
        Assert.Equal("admin", Cluster(table, "/admin/users"));
        Assert.Equal("default", Cluster(table, "/Orders/list"));
    }

    [Fact]
    public void Match_Headers_AllMustMatchAndInvertIsHonoured()
    {
        var route = PrefixRoute("/", "canary");
        route.Match.Headers.Add(new HeaderMatcher { Name = "x-canary", ExactMatch = "true" });
        route.Match.Headers.Add(new HeaderMatcher { Name = "x-user", StringMatch = new StringMatcher { Prefix = "test-", IgnoreCase = true } });
        route.Match.Headers.Add(new HeaderMatcher { Name = "x-block", PresentMatch = true, InvertMatch = true });
        route.Match.Headers.Add(new HeaderMatcher { Name = "x-version", RangeMatch = new Int64Range { Start = 2, End = 5 } });
        var table = RouteConfigurationDecoder.Map(Routes("r", Host("h", ["*"], route, PrefixRoute("/", "stable"))));
        var headers = new Dictionary<string, string> { ["x-canary"] = "true", ["x-user"] = "TEST-alice", ["x-version"] = "4" };

        Assert.Equal("canary", Match(table, headers));
        Assert.Equal("stable", Match(table, new(headers) { ["x-block"] = "1" }));
        Assert.Equal("stable", Match(table, new(headers) { ["x-version"] = "5" }));
        Assert.Equal("stable", Match(table, new(headers) { ["x-user"] = "prod-bob" }));
        Assert.Equal("stable", Match(table, new(headers) { ["x-canary"] = "false" }));
    }

    [Fact]
    public void Match_WeightedClusters90To10_SplitWithinTwoPercentOverTenThousandPicks()
    {
        var weighted = new WeightedCluster();
        weighted.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "v1", Weight = 90 });
        weighted.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "v2", Weight = 10 });
        var table = RouteConfigurationDecoder.Map(Routes("r", Host("h", ["*"], new Route
        {
            Match = new RouteMatch { Prefix = "/" },
            Route_ = new RouteAction { WeightedClusters = weighted },
        })));
        var random = new Random(20261130);

        var v1 = 0;
        for (var i = 0; i < 10_000; i++)
        {
            if (table.Match("orders", "/x", s_noHeaders, random.NextDouble)!.Cluster == "v1")
            {
                v1++;
            }
        }

        Assert.InRange(v1 / 10_000.0, 0.88, 0.92);
    }

    [Fact]
    public void Match_RuntimeFraction_TakesThatShareOfRequests()
    {
        var route = PrefixRoute("/", "experiment");
        route.Match.RuntimeFraction = new RuntimeFractionalPercent { DefaultValue = new FractionalPercent { Numerator = 25 } };
        var table = RouteConfigurationDecoder.Map(Routes("r", Host("h", ["*"], route, PrefixRoute("/", "main"))));

        Assert.Equal("experiment", table.Match("h", "/", s_noHeaders, static () => 0.24)!.Cluster);
        Assert.Equal("main", table.Match("h", "/", s_noHeaders, static () => 0.25)!.Cluster);
    }

    [Fact]
    public void Match_RouteAction_CarriesTimeoutRetryAndHashPolicies()
    {
        var action = new RouteAction
        {
            Cluster = "orders",
            Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(3)),
            RetryPolicy = new RetryPolicy
            {
                RetryOn = "5xx, reset,connect-failure",
                NumRetries = 4,
                PerTryTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
                RetryBackOff = new RetryPolicy.Types.RetryBackOff { BaseInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)) },
            },
        };
        action.RetryPolicy.RetriableStatusCodes.Add(409);
        action.HashPolicy.Add(new RouteAction.Types.HashPolicy { Header = new RouteAction.Types.HashPolicy.Types.Header { HeaderName = "X-User" }, Terminal = true });
        action.HashPolicy.Add(new RouteAction.Types.HashPolicy { Cookie = new RouteAction.Types.HashPolicy.Types.Cookie { Name = "session" } });
        var table = RouteConfigurationDecoder.Map(Routes("r", Host("h", ["*"], new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = action })));

        var result = table.Match("h", "/", s_noHeaders, s_random)!;

        Assert.Equal(TimeSpan.FromSeconds(3), result.Timeout);
        var retry = result.RetryPolicy!;
        Assert.Equal(["5xx", "reset", "connect-failure"], retry.RetryOn);
        Assert.Equal((4, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(1)), (retry.NumRetries, retry.PerTryTimeout, retry.BaseInterval, retry.MaxInterval));
        Assert.Equal([409], retry.RetriableStatusCodes);
        Assert.Equal([new XdsHashPolicy(XdsHashPolicyKind.Header, "x-user", true), new XdsHashPolicy(XdsHashPolicyKind.Cookie, "session", false)], result.Route.Action!.HashPolicies);
    }

    [Fact]
    public void Match_VirtualHostRetryPolicy_AppliesWhenTheRouteHasNone()
    {
        var host = Host("h", ["*"], PrefixRoute("/", "orders"));
        host.RetryPolicy = new RetryPolicy { RetryOn = "unavailable" };
        var table = RouteConfigurationDecoder.Map(Routes("r", host));

        var retry = table.Match("h", "/", s_noHeaders, s_random)!.RetryPolicy!;

        Assert.Equal(["unavailable"], retry.RetryOn);
        Assert.Equal((1, TimeSpan.FromMilliseconds(25), TimeSpan.FromMilliseconds(250)), (retry.NumRetries, retry.BaseInterval, retry.MaxInterval));
    }

    [Fact]
    public void Map_UnsupportedRoutes_AreSkippedOrKeptWithoutAction()
    {
        var byHeader = new Route { Match = new RouteMatch { Prefix = "/h" }, Route_ = new RouteAction { ClusterHeader = "x-cluster" } };
        var query = PrefixRoute("/q", "query");
        query.Match.QueryParameters.Add(new QueryParameterMatcher { Name = "debug" });
        var redirect = new Route { Match = new RouteMatch { Prefix = "/r" }, Redirect = new RedirectAction { HostRedirect = "elsewhere" } };
        var table = RouteConfigurationDecoder.Map(Routes("r", Host("h", ["*"], byHeader, query, redirect, PrefixRoute("/", "default"))));

        Assert.Equal("default", Cluster(table, "/h"));
        Assert.Equal("default", Cluster(table, "/q"));
        var redirected = table.Match("h", "/r", s_noHeaders, s_random)!;
        Assert.Null(redirected.Cluster);
        Assert.Null(redirected.Route.Action);
    }

    [Theory]
    [InlineData("regex", "virtual_hosts[0].routes[0].match.safe_regex: regex '(' is not valid")]
    [InlineData("weights", "virtual_hosts[0].routes[0].route.weighted_clusters: the weights add up to 0")]
    [InlineData("domains", "virtual_hosts[0] ('h') has no domains")]
    [InlineData("backoff", "virtual_hosts[0].routes[0].route.retry_policy.retry_back_off.max_interval is below base_interval")]
    public void Decode_InvalidRouteConfiguration_IsRejectedNamingTheField(string kind, string expected)
    {
        var route = PrefixRoute("/", "c");
        var host = Host("h", ["*"], route);
        switch (kind)
        {
            case "regex":
                route.Match = new RouteMatch { SafeRegex = new RegexMatcher { Regex = "(" } };
                break;
            case "weights":
                var weighted = new WeightedCluster();
                weighted.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "a", Weight = 0 });
                route.Route_ = new RouteAction { WeightedClusters = weighted };
                break;
            case "domains":
                host.Domains.Clear();
                break;
            default:
                route.Route_.RetryPolicy = new RetryPolicy
                {
                    RetryBackOff = new RetryPolicy.Types.RetryBackOff
                    {
                        BaseInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
                        MaxInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(10)),
                    },
                };
                break;
        }

        var result = RouteConfigurationDecoder.Instance.Decode(Any.Pack(Routes("routes-1", host)));

        Assert.Equal("routes-1", result.Name);
        Assert.Null(result.Resource);
        Assert.StartsWith("RouteConfiguration 'routes-1': " + expected, result.Error, StringComparison.Ordinal);
    }

    private static string? Cluster(XdsRouteTable table, string path) => table.Match("h", path, s_noHeaders, s_random)?.Cluster;

    private static string? Match(XdsRouteTable table, Dictionary<string, string> headers)
        => table.Match("h", "/", name => headers.GetValueOrDefault(name), s_random)?.Cluster;
}
