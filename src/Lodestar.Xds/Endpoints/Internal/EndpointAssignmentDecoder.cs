using System.Globalization;
using System.Net;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Lodestar.Endpoints;
using Lodestar.Xds.Resources;

namespace Lodestar.Xds.Endpoints.Internal;

/// <summary>
/// Decodes and validates <c>ClusterLoadAssignment</c> resources as grpc-go's xdsresource unmarshaller does, and maps
/// them to <see cref="XdsEndpointAssignment"/>.
/// </summary>
/// <remarks>
/// <para>Rejected (the resource is NACKed): a locality without <c>locality</c>; two entries for one locality at one
/// priority; priorities that skip a number; an endpoint that is not a socket address, has no port or a port above
/// 65535; an endpoint weight of 0; the same address twice; locality or endpoint weight sums beyond 2³² − 1.</para>
/// <para>Skipped, as gRPC does: localities whose <c>load_balancing_weight</c> is 0 or unset.</para>
/// <para>Weights: a Lodestar endpoint's <see cref="DiscoveredEndpoint.Weight"/> is the locality weight times the
/// endpoint weight (gRFC A42's product, which is what a flat weighted pick needs to give each locality its share),
/// scaled down proportionally when the largest product exceeds <see cref="DiscoveredEndpoint.MaxWeight"/>.</para>
/// </remarks>
internal sealed class EndpointAssignmentDecoder : XdsResourceType
{
    public const string RegionKey = "xds.locality.region";
    public const string ZoneKey = "xds.locality.zone";
    public const string SubZoneKey = "xds.locality.sub_zone";
    public const string HealthKey = "xds.health_status";
    public const string HostnameKey = "xds.hostname";
    public const string LbMetadataPrefix = "envoy.lb.";

    public static readonly EndpointAssignmentDecoder Instance = new();

    public override string TypeUrl => XdsTypeUrls.ClusterLoadAssignment;

    public override bool AllResourcesRequiredInSotW => false;

    public override XdsDecodeResult Decode(Any resource)
    {
        ClusterLoadAssignment message;
        try
        {
            message = ClusterLoadAssignment.Parser.ParseFrom(resource.Value);
        }
        catch (Exception ex)
        {
            return XdsDecodeResult.Invalid(null, $"a ClusterLoadAssignment could not be decoded: {ex.Message}");
        }

        try
        {
            return XdsDecodeResult.Valid(message.ClusterName, Map(message));
        }
        catch (XdsResourceException ex)
        {
            return XdsDecodeResult.Invalid(message.ClusterName, $"ClusterLoadAssignment '{message.ClusterName}': {ex.Message}");
        }
    }

    public static XdsEndpointAssignment Map(ClusterLoadAssignment message)
    {
        if (string.IsNullOrEmpty(message.ClusterName))
        {
            throw new XdsResourceException("cluster_name is empty");
        }

        var localities = new List<(LocalityLbEndpoints Proto, uint Weight)>(message.Endpoints.Count);
        var seenLocalities = new HashSet<(uint, string, string, string)>();
        var localityWeightSums = new Dictionary<uint, ulong>();
        var priorities = new SortedSet<uint>();
        for (var i = 0; i < message.Endpoints.Count; i++)
        {
            var entry = message.Endpoints[i];
            if (entry.Locality is null)
            {
                throw new XdsResourceException($"endpoints[{i}]: locality is missing");
            }

            var weight = entry.LoadBalancingWeight ?? 0;
            if (weight == 0)
            {
                // gRPC ignores localities without weight.
                continue;
            }

            if (entry.Priority > 128)
            {
                throw new XdsResourceException($"endpoints[{i}]: priority {entry.Priority} is above 128");
            }

            var key = (entry.Priority, entry.Locality.Region, entry.Locality.Zone, entry.Locality.SubZone);
            if (!seenLocalities.Add(key))
            {
                throw new XdsResourceException($"endpoints[{i}]: locality {Describe(entry.Locality)} appears twice at priority {entry.Priority}");
            }

            localityWeightSums.TryGetValue(entry.Priority, out var sum);
            sum += weight;
            if (sum > uint.MaxValue)
            {
                throw new XdsResourceException($"endpoints[{i}]: the locality weights of priority {entry.Priority} add up to more than {uint.MaxValue}");
            }

            localityWeightSums[entry.Priority] = sum;
            priorities.Add(entry.Priority);
            localities.Add((entry, weight));
        }

        var expected = 0u;
        foreach (var priority in priorities)
        {
            if (priority != expected)
            {
                throw new XdsResourceException($"priority {expected} is missing (priorities received: {string.Join(", ", priorities)})");
            }

            expected++;
        }

        // First pass: validate endpoints and find the largest weight product for scaling. Paths for messages are
        // built only when something is wrong: a large assignment must not pay for them.
        var addresses = new HashSet<(string, int)>();
        ulong maxProduct = 1;
        for (var l = 0; l < localities.Count; l++)
        {
            var (entry, localityWeight) = localities[l];
            ulong endpointSum = 0;
            for (var e = 0; e < entry.LbEndpoints.Count; e++)
            {
                var lb = entry.LbEndpoints[e];
                var (host, port) = ReadAddress(lb, entry, e, message);
                if (!addresses.Add((host, port)))
                {
                    throw new XdsResourceException($"{Path(message, entry, e)}: address {DiscoveredEndpointAddress(host, port)} appears more than once");
                }

                var weight = lb.LoadBalancingWeight ?? 1;
                if (weight == 0)
                {
                    throw new XdsResourceException($"{Path(message, entry, e)}: load_balancing_weight is 0");
                }

                endpointSum += weight;
                if (endpointSum > uint.MaxValue)
                {
                    throw new XdsResourceException($"{Path(message, entry, e)}: the endpoint weights of the locality add up to more than {uint.MaxValue}");
                }

                maxProduct = Math.Max(maxProduct, (ulong)weight * localityWeight);
            }
        }

        var scale = maxProduct > DiscoveredEndpoint.MaxWeight ? (double)DiscoveredEndpoint.MaxWeight / maxProduct : 1.0;
        var mapped = new List<XdsLocality>(localities.Count);
        var routable = new List<DiscoveredEndpoint>();
        foreach (var (entry, localityWeight) in localities)
        {
            var locality = entry.Locality;
            var endpoints = new List<XdsEndpoint>(entry.LbEndpoints.Count);

            // Endpoints of one locality with one health status and no metadata of their own describe themselves the
            // same way: one dictionary serves them all (the endpoint keeps its own frozen copy).
            var shared = new Dictionary<HealthStatus, Dictionary<string, string>>();
            for (var e = 0; e < entry.LbEndpoints.Count; e++)
            {
                var lb = entry.LbEndpoints[e];
                var (host, port) = ReadAddress(lb, entry, e, message);
                var weight = lb.LoadBalancingWeight ?? 1;
                var product = (ulong)weight * localityWeight;
                var effective = scale == 1.0 ? (int)product : Math.Max(1, (int)Math.Round(product * scale));
                var health = HealthName(lb.HealthStatus);
                Dictionary<string, string> metadata;
                if (lb.Endpoint.Hostname.Length == 0 && lb.Metadata is null)
                {
                    if (!shared.TryGetValue(lb.HealthStatus, out metadata!))
                    {
                        metadata = BuildMetadata(locality, health, lb);
                        shared[lb.HealthStatus] = metadata;
                    }
                }
                else
                {
                    metadata = BuildMetadata(locality, health, lb);
                }

                if (!DiscoveredEndpoint.TryCreate(host, port, null, effective, locality.Zone, metadata, (int)entry.Priority, out var endpoint, out var error))
                {
                    throw new XdsResourceException($"endpoint {DiscoveredEndpointAddress(host, port)}: {error}");
                }

                var isRoutable = lb.HealthStatus is HealthStatus.Healthy or HealthStatus.Unknown;
                endpoints.Add(new XdsEndpoint(endpoint, health, weight, isRoutable));
                if (isRoutable)
                {
                    routable.Add(endpoint);
                }
            }

            mapped.Add(new XdsLocality(locality.Region, locality.Zone, locality.SubZone, localityWeight, (int)entry.Priority, endpoints));
        }

        var drops = new List<XdsDropOverload>();
        if (message.Policy is { } policy)
        {
            for (var i = 0; i < policy.DropOverloads.Count; i++)
            {
                var drop = policy.DropOverloads[i];
                if (string.IsNullOrEmpty(drop.Category))
                {
                    throw new XdsResourceException($"policy.drop_overloads[{i}]: category is empty");
                }

                drops.Add(new XdsDropOverload(drop.Category, Fraction(drop.DropPercentage)));
            }
        }

        return new XdsEndpointAssignment(message.ClusterName, mapped, drops, routable);
    }

    /// <summary>Returns a fractional percentage as a share in [0, 1].</summary>
    public static double Fraction(FractionalPercent? percent)
    {
        if (percent is null)
        {
            return 0;
        }

        double denominator = percent.Denominator switch
        {
            FractionalPercent.Types.DenominatorType.TenThousand => 10_000,
            FractionalPercent.Types.DenominatorType.Million => 1_000_000,
            _ => 100,
        };
        return Math.Min(1.0, percent.Numerator / denominator);
    }

    private static (string Host, int Port) ReadAddress(LbEndpoint lb, LocalityLbEndpoints entry, int index, ClusterLoadAssignment message)
    {
        var socket = lb.Endpoint?.Address?.SocketAddress
                     ?? throw new XdsResourceException($"{Path(message, entry, index)}: the endpoint has no socket address");
        if (socket.PortSpecifierCase != Envoy.Config.Core.V3.SocketAddress.PortSpecifierOneofCase.PortValue)
        {
            throw new XdsResourceException($"{Path(message, entry, index)}: the socket address has no port_value");
        }

        if (socket.PortValue is 0 or > 65535)
        {
            throw new XdsResourceException($"{Path(message, entry, index)}: port {socket.PortValue} is outside 1-65535");
        }

        if (string.IsNullOrEmpty(socket.Address))
        {
            throw new XdsResourceException($"{Path(message, entry, index)}: the socket address is empty");
        }

        return (socket.Address, (int)socket.PortValue);
    }

    private static string Path(ClusterLoadAssignment message, LocalityLbEndpoints entry, int index)
        => $"endpoints[{message.Endpoints.IndexOf(entry)}].lb_endpoints[{index}]";

    private static string HealthName(HealthStatus status) => status switch
    {
        HealthStatus.Unknown => "UNKNOWN",
        HealthStatus.Healthy => "HEALTHY",
        HealthStatus.Unhealthy => "UNHEALTHY",
        HealthStatus.Draining => "DRAINING",
        HealthStatus.Timeout => "TIMEOUT",
        HealthStatus.Degraded => "DEGRADED",
        _ => ((int)status).ToString(CultureInfo.InvariantCulture),
    };

    private static Dictionary<string, string> BuildMetadata(Locality locality, string health, LbEndpoint lb)
    {
        var metadata = new Dictionary<string, string>(4, StringComparer.Ordinal) { [HealthKey] = health };
        if (locality.Region.Length > 0)
        {
            metadata[RegionKey] = locality.Region;
        }

        if (locality.Zone.Length > 0)
        {
            metadata[ZoneKey] = locality.Zone;
        }

        if (locality.SubZone.Length > 0)
        {
            metadata[SubZoneKey] = locality.SubZone;
        }

        if (lb.Endpoint.Hostname.Length > 0)
        {
            metadata[HostnameKey] = lb.Endpoint.Hostname;
        }

        if (lb.Metadata is not null && lb.Metadata.FilterMetadata.TryGetValue("envoy.lb", out var envoyLb))
        {
            foreach (var field in envoyLb.Fields)
            {
                var text = field.Value.KindCase switch
                {
                    Value.KindOneofCase.StringValue => field.Value.StringValue,
                    Value.KindOneofCase.BoolValue => field.Value.BoolValue ? "true" : "false",
                    Value.KindOneofCase.NumberValue => field.Value.NumberValue.ToString(CultureInfo.InvariantCulture),
                    _ => null,
                };
                if (text is not null)
                {
                    metadata[LbMetadataPrefix + field.Key] = text;
                }
            }
        }

        return metadata;
    }

    private static string Describe(Locality locality) => $"{{region '{locality.Region}', zone '{locality.Zone}', sub_zone '{locality.SubZone}'}}";

    private static string DiscoveredEndpointAddress(string host, int port)
        => IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{host}]:{port.ToString(CultureInfo.InvariantCulture)}"
            : $"{host}:{port.ToString(CultureInfo.InvariantCulture)}";
}
