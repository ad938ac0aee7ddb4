using System.Text.RegularExpressions;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Resources;

namespace Lodestar.Xds.Routing.Internal;

/// <summary>
/// Decodes and validates <c>RouteConfiguration</c> resources as grpc-go's xdsresource unmarshaller does and maps them to
/// <see cref="XdsRouteTable"/>.
/// </summary>
/// <remarks>
/// <para>Rejected: a virtual host without domains; an invalid regular expression; a weighted-cluster action whose
/// weights add up to 0 or beyond 2³² − 1; an empty cluster name; a retry backoff without a positive base interval or
/// with a maximum below it; a header hash policy without a header name.</para>
/// <para>Skipped (the route is left out, as gRPC does): routes matching a CONNECT request or no path at all, routes
/// with query-parameter matchers, routes that pick the cluster from a header or a cluster-specifier plugin.</para>
/// <para>Kept with no action (a request that matches fails): redirects, direct responses and non-forwarding actions.</para>
/// </remarks>
internal sealed class RouteConfigurationDecoder : XdsResourceType
{
    private static readonly TimeSpan s_defaultRetryBase = TimeSpan.FromMilliseconds(25);
    private static readonly TimeSpan s_regexTimeout = TimeSpan.FromMilliseconds(100);

    public static readonly RouteConfigurationDecoder Instance = new();

    public override string TypeUrl => XdsTypeUrls.RouteConfiguration;

    public override bool AllResourcesRequiredInSotW => false;

    public override XdsDecodeResult Decode(Any resource)
    {
        RouteConfiguration message;
        try
        {
            message = RouteConfiguration.Parser.ParseFrom(resource.Value);
        }
        catch (Exception ex)
        {
            return XdsDecodeResult.Invalid(null, $"a RouteConfiguration could not be decoded: {ex.Message}");
        }

        try
        {
            return XdsDecodeResult.Valid(message.Name, Map(message));
        }
        catch (XdsResourceException ex)
        {
            return XdsDecodeResult.Invalid(message.Name, $"RouteConfiguration '{message.Name}': {ex.Message}");
        }
    }

    public static XdsRouteTable Map(RouteConfiguration message)
    {
        var hosts = new List<XdsVirtualHost>(message.VirtualHosts.Count);
        for (var h = 0; h < message.VirtualHosts.Count; h++)
        {
            var host = message.VirtualHosts[h];
            var path = $"virtual_hosts[{h}]";
            if (host.Domains.Count == 0)
            {
                throw new XdsResourceException($"{path} ('{host.Name}') has no domains");
            }

            var routes = new List<XdsRoute>(host.Routes.Count);
            for (var r = 0; r < host.Routes.Count; r++)
            {
                if (MapRoute(host.Routes[r], $"{path}.routes[{r}]") is { } route)
                {
                    routes.Add(route);
                }
            }

            hosts.Add(new XdsVirtualHost(host.Name, [.. host.Domains], routes, MapRetry(host.RetryPolicy, path + ".retry_policy")));
        }

        return new XdsRouteTable(message.Name, hosts);
    }

    private static XdsRoute? MapRoute(Route route, string path)
    {
        var match = route.Match;
        if (match is null)
        {
            return null;
        }

        XdsPathMatchKind kind;
        string value;
        Regex? regex = null;
        switch (match.PathSpecifierCase)
        {
            case RouteMatch.PathSpecifierOneofCase.Prefix:
                kind = XdsPathMatchKind.Prefix;
                value = match.Prefix;
                break;
            case RouteMatch.PathSpecifierOneofCase.Path:
                kind = XdsPathMatchKind.Path;
                value = match.Path;
                break;
            case RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix:
                kind = XdsPathMatchKind.SeparatedPrefix;
                value = match.PathSeparatedPrefix;
                break;
            case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                kind = XdsPathMatchKind.Regex;
                value = match.SafeRegex.Regex;
                regex = Compile(match.SafeRegex, path + ".match.safe_regex", ignoreCase: false);
                break;
            default:
                return null;
        }

        if (match.QueryParameters.Count > 0)
        {
            return null;
        }

        var headers = new List<XdsHeaderMatcher>(match.Headers.Count);
        for (var i = 0; i < match.Headers.Count; i++)
        {
            headers.Add(MapHeader(match.Headers[i], $"{path}.match.headers[{i}]"));
        }

        XdsRouteAction? action = null;
        switch (route.ActionCase)
        {
            case Route.ActionOneofCase.Route_:
                action = MapAction(route.Route_, path + ".route");
                if (action is null)
                {
                    return null;
                }

                break;
            case Route.ActionOneofCase.None:
                throw new XdsResourceException($"{path} has no action");
        }

        return new XdsRoute
        {
            Name = route.Name,
            PathKind = kind,
            PathValue = value,
            PathRegex = regex,
            CaseSensitive = match.CaseSensitive ?? true,
            Headers = headers,
            RuntimeFraction = match.RuntimeFraction?.DefaultValue is { } fraction ? EndpointAssignmentDecoder.Fraction(fraction) : null,
            Action = action,
        };
    }

    private static XdsRouteAction? MapAction(RouteAction action, string path)
    {
        List<XdsWeightedCluster> clusters;
        long total;
        switch (action.ClusterSpecifierCase)
        {
            case RouteAction.ClusterSpecifierOneofCase.Cluster:
                if (action.Cluster.Length == 0)
                {
                    throw new XdsResourceException($"{path}.cluster is empty");
                }

                clusters = [new XdsWeightedCluster(action.Cluster, 1)];
                total = 1;
                break;
            case RouteAction.ClusterSpecifierOneofCase.WeightedClusters:
                clusters = [];
                total = 0;
                var weighted = action.WeightedClusters.Clusters;
                for (var i = 0; i < weighted.Count; i++)
                {
                    var weight = weighted[i].Weight ?? 0;
                    if (weighted[i].Name.Length == 0)
                    {
                        throw new XdsResourceException($"{path}.weighted_clusters.clusters[{i}].name is empty");
                    }

                    if (weight == 0)
                    {
                        continue;
                    }

                    total += weight;
                    clusters.Add(new XdsWeightedCluster(weighted[i].Name, weight));
                }

                if (total == 0)
                {
                    throw new XdsResourceException($"{path}.weighted_clusters: the weights add up to 0");
                }

                if (total > uint.MaxValue)
                {
                    throw new XdsResourceException($"{path}.weighted_clusters: the weights add up to more than {uint.MaxValue}");
                }

                break;
            default:
                // cluster_header and cluster specifier plugins: the route is ignored, as gRPC does.
                return null;
        }

        var hashPolicies = new List<XdsHashPolicy>(action.HashPolicy.Count);
        for (var i = 0; i < action.HashPolicy.Count; i++)
        {
            if (MapHashPolicy(action.HashPolicy[i], $"{path}.hash_policy[{i}]") is { } policy)
            {
                hashPolicies.Add(policy);
            }
        }

        return new XdsRouteAction
        {
            Clusters = clusters,
            TotalWeight = total,
            Timeout = action.Timeout is { } timeout ? ClusterDecoder.ReadDuration(timeout, path + ".timeout") : null,
            MaxStreamDuration = action.MaxStreamDuration?.MaxStreamDuration_ is { } msd ? ClusterDecoder.ReadDuration(msd, path + ".max_stream_duration.max_stream_duration") : null,
            GrpcTimeoutHeaderMax = action.MaxStreamDuration?.GrpcTimeoutHeaderMax is { } max ? ClusterDecoder.ReadDuration(max, path + ".max_stream_duration.grpc_timeout_header_max") : null,
            RetryPolicy = MapRetry(action.RetryPolicy, path + ".retry_policy"),
            HashPolicies = hashPolicies,
        };
    }

    private static XdsRetryPolicy? MapRetry(RetryPolicy? policy, string path)
    {
        if (policy is null)
        {
            return null;
        }

        var retryOn = policy.RetryOn.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var baseInterval = s_defaultRetryBase;
        TimeSpan? maxInterval = null;
        if (policy.RetryBackOff is { } backOff)
        {
            if (backOff.BaseInterval is null)
            {
                throw new XdsResourceException($"{path}.retry_back_off.base_interval is missing");
            }

            baseInterval = ClusterDecoder.ReadDuration(backOff.BaseInterval, path + ".retry_back_off.base_interval");
            if (baseInterval <= TimeSpan.Zero)
            {
                throw new XdsResourceException($"{path}.retry_back_off.base_interval must be above 0");
            }

            if (backOff.MaxInterval is { } max)
            {
                maxInterval = ClusterDecoder.ReadDuration(max, path + ".retry_back_off.max_interval");
                if (maxInterval < baseInterval)
                {
                    throw new XdsResourceException($"{path}.retry_back_off.max_interval is below base_interval");
                }
            }
        }

        return new XdsRetryPolicy(
            retryOn,
            (int)Math.Min(policy.NumRetries ?? 1, int.MaxValue),
            policy.PerTryTimeout is { } perTry ? ClusterDecoder.ReadDuration(perTry, path + ".per_try_timeout") : null,
            baseInterval,
            maxInterval ?? baseInterval * 10,
            [.. policy.RetriableStatusCodes.Select(static c => (int)c)]);
    }

    private static XdsHashPolicy? MapHashPolicy(RouteAction.Types.HashPolicy policy, string path)
    {
        switch (policy.PolicySpecifierCase)
        {
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Header:
                if (policy.Header.HeaderName.Length == 0)
                {
                    throw new XdsResourceException($"{path}.header.header_name is empty");
                }

                return new XdsHashPolicy(XdsHashPolicyKind.Header, policy.Header.HeaderName.ToLowerInvariant(), policy.Terminal);
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Cookie:
                if (policy.Cookie.Name.Length == 0)
                {
                    throw new XdsResourceException($"{path}.cookie.name is empty");
                }

                return new XdsHashPolicy(XdsHashPolicyKind.Cookie, policy.Cookie.Name, policy.Terminal);
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.ConnectionProperties:
                return policy.ConnectionProperties.SourceIp ? new XdsHashPolicy(XdsHashPolicyKind.SourceIp, null, policy.Terminal) : null;
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.QueryParameter:
                return new XdsHashPolicy(XdsHashPolicyKind.QueryParameter, policy.QueryParameter.Name, policy.Terminal);
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.FilterState:
                return new XdsHashPolicy(XdsHashPolicyKind.FilterState, policy.FilterState.Key, policy.Terminal);
            default:
                return null;
        }
    }

    private static XdsHeaderMatcher MapHeader(HeaderMatcher header, string path)
    {
        if (header.Name.Length == 0)
        {
            throw new XdsResourceException($"{path}.name is empty");
        }

        var name = header.Name.ToLowerInvariant();
        return header.HeaderMatchSpecifierCase switch
        {
            HeaderMatcher.HeaderMatchSpecifierOneofCase.ExactMatch => Header(name, XdsHeaderMatchKind.Exact, header.ExactMatch, header),
            HeaderMatcher.HeaderMatchSpecifierOneofCase.PrefixMatch => Header(name, XdsHeaderMatchKind.Prefix, header.PrefixMatch, header),
            HeaderMatcher.HeaderMatchSpecifierOneofCase.SuffixMatch => Header(name, XdsHeaderMatchKind.Suffix, header.SuffixMatch, header),
            HeaderMatcher.HeaderMatchSpecifierOneofCase.ContainsMatch => Header(name, XdsHeaderMatchKind.Contains, header.ContainsMatch, header),
            HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch => new XdsHeaderMatcher
            {
                Name = name,
                Kind = XdsHeaderMatchKind.Regex,
                Value = header.SafeRegexMatch.Regex,
                Regex = Compile(header.SafeRegexMatch, path + ".safe_regex_match", ignoreCase: false),
                Invert = header.InvertMatch,
                TreatMissingAsEmpty = header.TreatMissingHeaderAsEmpty,
            },
            HeaderMatcher.HeaderMatchSpecifierOneofCase.RangeMatch => new XdsHeaderMatcher
            {
                Name = name,
                Kind = XdsHeaderMatchKind.Range,
                RangeStart = header.RangeMatch.Start,
                RangeEnd = header.RangeMatch.End,
                Invert = header.InvertMatch,
                TreatMissingAsEmpty = header.TreatMissingHeaderAsEmpty,
            },
            HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch => new XdsHeaderMatcher
            {
                Name = name,
                Kind = XdsHeaderMatchKind.Present,
                Present = header.PresentMatch,
                Invert = header.InvertMatch,
                TreatMissingAsEmpty = header.TreatMissingHeaderAsEmpty,
            },
            HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch => MapStringMatch(name, header, path + ".string_match"),
            _ => new XdsHeaderMatcher { Name = name, Kind = XdsHeaderMatchKind.Present, Invert = header.InvertMatch },
        };
    }

    private static XdsHeaderMatcher MapStringMatch(string name, HeaderMatcher header, string path)
    {
        var matcher = header.StringMatch;
        var (kind, value) = matcher.MatchPatternCase switch
        {
            StringMatcher.MatchPatternOneofCase.Exact => (XdsHeaderMatchKind.Exact, matcher.Exact),
            StringMatcher.MatchPatternOneofCase.Prefix => (XdsHeaderMatchKind.Prefix, matcher.Prefix),
            StringMatcher.MatchPatternOneofCase.Suffix => (XdsHeaderMatchKind.Suffix, matcher.Suffix),
            StringMatcher.MatchPatternOneofCase.Contains => (XdsHeaderMatchKind.Contains, matcher.Contains),
            StringMatcher.MatchPatternOneofCase.SafeRegex => (XdsHeaderMatchKind.Regex, matcher.SafeRegex.Regex),
            _ => throw new XdsResourceException($"{path} has no match pattern"),
        };
        return new XdsHeaderMatcher
        {
            Name = name,
            Kind = kind,
            Value = value,
            Regex = kind == XdsHeaderMatchKind.Regex ? Compile(matcher.SafeRegex, path + ".safe_regex", matcher.IgnoreCase) : null,
            IgnoreCase = matcher.IgnoreCase,
            Invert = header.InvertMatch,
            TreatMissingAsEmpty = header.TreatMissingHeaderAsEmpty,
        };
    }

    private static XdsHeaderMatcher Header(string name, XdsHeaderMatchKind kind, string value, HeaderMatcher header) => new()
    {
        Name = name,
        Kind = kind,
        Value = value,
        Invert = header.InvertMatch,
        TreatMissingAsEmpty = header.TreatMissingHeaderAsEmpty,
    };

    /// <summary>
    /// Compiles an RE2 expression for a whole-string match. The non-backtracking engine keeps RE2's linear-time
    /// guarantee; constructs RE2 lacks (backreferences, lookaround) are refused by it as well.
    /// </summary>
    private static Regex Compile(RegexMatcher matcher, string path, bool ignoreCase)
    {
        try
        {
            var options = RegexOptions.CultureInvariant | RegexOptions.NonBacktracking | (ignoreCase ? RegexOptions.IgnoreCase : RegexOptions.None);
            return new Regex("^(?:" + matcher.Regex + ")$", options, s_regexTimeout);
        }
        catch (ArgumentException ex)
        {
            throw new XdsResourceException($"{path}: regex '{matcher.Regex}' is not valid: {ex.Message}");
        }
    }
}
