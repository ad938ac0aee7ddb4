using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Xds.Endpoints.Internal;

/// <summary>
/// The drop overloads (EDS <c>policy.drop_overloads</c>) currently in force per cluster, shared by the
/// <c>HttpClient</c> path and <c>xds:///</c> channels: before a request to a cluster is sent, each category in order
/// drops it with its probability, as Envoy's and gRPC's clients do.
/// </summary>
/// <remarks>
/// The cluster's endpoint source writes the list of every accepted assignment (one reference write per cluster)
/// before it publishes the endpoints, so a balancer that has endpoints already sees their drops; readers never lock.
/// </remarks>
internal sealed partial class XdsDropOverloads
{
    private readonly ConcurrentDictionary<string, IReadOnlyList<XdsDropOverload>> _byCluster = new(StringComparer.Ordinal);
    private readonly ILogger _logger;

    public XdsDropOverloads(ILogger<XdsDropOverloads> logger)
        : this((ILogger)logger)
    {
    }

    internal XdsDropOverloads(ILogger? logger = null)
    {
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>Sets the drops of a cluster from its latest accepted assignment (an empty list when it has none).</summary>
    public void Set(string cluster, IReadOnlyList<XdsDropOverload> drops) => _byCluster[cluster] = drops;

    /// <summary>Forgets a cluster whose endpoint source stopped, if <paramref name="drops"/> is still its list.</summary>
    public void Remove(string cluster, IReadOnlyList<XdsDropOverload> drops)
        => _byCluster.TryRemove(new KeyValuePair<string, IReadOnlyList<XdsDropOverload>>(cluster, drops));

    /// <summary>Gets whether an assignment (or a missing cluster) has been seen for the cluster, so its drops are known.</summary>
    public bool IsKnown(string cluster) => _byCluster.ContainsKey(cluster);

    /// <summary>
    /// Decides whether one request to <paramref name="cluster"/> is dropped: each drop overload in order draws
    /// <paramref name="random"/> (in [0, 1)) and drops the request when the draw is below its fraction.
    /// </summary>
    /// <returns><see langword="true"/> with the category that dropped the request; <see langword="false"/> to send it.</returns>
    public bool TryDrop(string cluster, Func<double> random, [NotNullWhen(true)] out XdsDropOverload? drop)
    {
        if (_byCluster.TryGetValue(cluster, out var drops) && Choose(drops, random) is { } chosen)
        {
            Log.Dropped(_logger, cluster, chosen.Category);
            drop = chosen;
            return true;
        }

        drop = null;
        return false;
    }

    /// <summary>Applies the drops in order with the given randomness; returns the one that drops the request, or <see langword="null"/>.</summary>
    internal static XdsDropOverload? Choose(IReadOnlyList<XdsDropOverload> drops, Func<double> random)
    {
        for (var i = 0; i < drops.Count; i++)
        {
            var drop = drops[i];
            if (drop.Fraction > 0 && random() < drop.Fraction)
            {
                return drop;
            }
        }

        return null;
    }

    /// <summary>The message a dropped request fails with, naming the cluster and the category.</summary>
    public static string Describe(string cluster, XdsDropOverload drop)
        => string.Create(CultureInfo.InvariantCulture,
            $"The request to xDS cluster '{cluster}' was dropped by the control plane's drop overload '{drop.Category}' ({drop.Fraction * 100:0.####} % of requests); it was not sent.");

    private static partial class Log
    {
        [LoggerMessage(90, LogLevel.Debug, "xDS cluster {Cluster}: a request was dropped by the drop overload {Category}.", EventName = "XdsRequestDropped")]
        public static partial void Dropped(ILogger logger, string cluster, string category);
    }
}
