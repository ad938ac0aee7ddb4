using System.Runtime.CompilerServices;
using Grpc.Net.Client.Balancer;
using Lodestar.Xds.Routing;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// The route table of one <c>xds:///</c> channel, shared by its resolver (which writes it) and its balancer's pickers
/// (which read it per call), so that a route change takes effect on the next call without re-resolving.
/// </summary>
internal sealed class XdsChannelRoutes
{
    /// <summary>The attribute under which every address of an <c>xds:///</c> channel carries the channel's routes.</summary>
    public static readonly BalancerAttributesKey<XdsChannelRoutes> Key = new("lodestar.xds.routes");

    /// <summary>The attribute under which every address carries the cluster it belongs to.</summary>
    public static readonly BalancerAttributesKey<string> ClusterKey = new("lodestar.xds.cluster");

    private volatile XdsRouteTable? _table;
    private volatile IReadOnlySet<string> _emptyClusters = new HashSet<string>();
    private volatile StrongBox<TimeSpan>? _maxStreamDuration;

    public XdsChannelRoutes(string listener)
    {
        Listener = listener;
    }

    /// <summary>Gets the listener the channel follows; it is also the authority its calls are routed by.</summary>
    public string Listener { get; }

    /// <summary>Gets or sets the current route table (one reference write per accepted update).</summary>
    public XdsRouteTable? Table
    {
        get => _table;
        set => _table = value;
    }

    /// <summary>Gets or sets the clusters whose current endpoint set is empty (calls routed to them fail at once rather than wait).</summary>
    public IReadOnlySet<string> EmptyClusters
    {
        get => _emptyClusters;
        set => _emptyClusters = value;
    }

    /// <summary>
    /// Gets or sets the listener's <c>common_http_protocol_options.max_stream_duration</c>: the cap on a call's deadline
    /// for routes that set neither <c>max_stream_duration</c> nor <c>grpc_timeout_header_max</c> (gRFC A31).
    /// </summary>
    public TimeSpan? MaxStreamDuration
    {
        get => _maxStreamDuration?.Value;
        set => _maxStreamDuration = value is { } duration ? new StrongBox<TimeSpan>(duration) : null;
    }
}
