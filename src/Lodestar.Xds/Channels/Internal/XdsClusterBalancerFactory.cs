using Grpc.Net.Client.Balancer;
using Lodestar.LoadBalancing;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Endpoints.Internal;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// Creates the balancer of <c>xds:///</c> channels; the <c>xds</c> resolver selects it through the service config it
/// hands the channel, so the channel's own options need not name it. Registered by <c>AddXds()</c>.
/// </summary>
internal sealed class XdsClusterBalancerFactory : LoadBalancerFactory
{
    /// <summary>The policy name the resolver's service config selects.</summary>
    public const string PolicyName = "lodestar_xds_cluster_manager";

    private readonly IServiceBalancing _balancing;
    private readonly XdsClusterOptions _clusterOptions;
    private readonly XdsClusterCallCounters _counters;
    private readonly Func<double> _random;
    private readonly XdsDropOverloads? _drops;

    public XdsClusterBalancerFactory(IServiceBalancing balancing, XdsClusterOptions clusterOptions, XdsClusterCallCounters counters, XdsDropOverloads drops)
        : this(balancing, clusterOptions, counters, static () => Random.Shared.NextDouble(), drops)
    {
    }

    internal XdsClusterBalancerFactory(IServiceBalancing balancing, XdsClusterOptions clusterOptions, XdsClusterCallCounters counters, Func<double> random,
        XdsDropOverloads? drops = null)
    {
        _drops = drops;
        _balancing = balancing;
        _clusterOptions = clusterOptions;
        _counters = counters;
        _random = random;
    }

    public override string Name => PolicyName;

    public override LoadBalancer Create(LoadBalancerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new XdsClusterBalancer(options.Controller, options.LoggerFactory, _balancing, _clusterOptions, _counters, _random, _drops);
    }
}
