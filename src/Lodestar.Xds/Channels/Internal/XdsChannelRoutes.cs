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
}
