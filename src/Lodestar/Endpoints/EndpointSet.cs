using System.Collections.Immutable;

namespace Lodestar.Endpoints;

/// <summary>
/// A complete, immutable snapshot of one service's endpoints as a source last saw them.
/// </summary>
/// <remarks>
/// A new set is published as a whole; readers never see a half-applied update. <see cref="Version"/> grows by one
/// with every set published for the same service and source in a process.
/// </remarks>
public sealed class EndpointSet
{
    private EndpointSet(string serviceName, string sourceName, ImmutableArray<DiscoveredEndpoint> endpoints, long version, DateTimeOffset updatedAt)
    {
        ServiceName = serviceName;
        SourceName = sourceName;
        Endpoints = endpoints;
        Version = version;
        UpdatedAt = updatedAt;
    }

    /// <summary>Gets the logical service name.</summary>
    public string ServiceName { get; }

    /// <summary>Gets the name of the source that produced the set (for example <c>configuration</c>).</summary>
    public string SourceName { get; }

    /// <summary>Gets the endpoints, de-duplicated by identity, in the order the source gave them.</summary>
    public ImmutableArray<DiscoveredEndpoint> Endpoints { get; }

    /// <summary>Gets the version, starting at 1 and growing with each published set.</summary>
    public long Version { get; }

    /// <summary>Gets when the set was published.</summary>
    public DateTimeOffset UpdatedAt { get; }

    /// <summary>Gets the number of endpoints.</summary>
    public int Count => Endpoints.Length;

    /// <summary>Creates a set; duplicate endpoints (same scheme, host and port) are kept once, the first seen wins.</summary>
    /// <param name="serviceName">The logical service name.</param>
    /// <param name="sourceName">The producing source's name.</param>
    /// <param name="endpoints">The endpoints.</param>
    /// <param name="version">The version, 1 or more.</param>
    /// <param name="updatedAt">When the set was published.</param>
    /// <returns>The set.</returns>
    public static EndpointSet Create(string serviceName, string sourceName, IEnumerable<DiscoveredEndpoint> endpoints, long version, DateTimeOffset updatedAt)
    {
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        ArgumentException.ThrowIfNullOrEmpty(sourceName);
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentOutOfRangeException.ThrowIfLessThan(version, 1);

        var seen = new HashSet<DiscoveredEndpoint>();
        var builder = ImmutableArray.CreateBuilder<DiscoveredEndpoint>();
        foreach (var endpoint in endpoints)
        {
            ArgumentNullException.ThrowIfNull(endpoint, nameof(endpoints));
            if (seen.Add(endpoint))
            {
                builder.Add(endpoint);
            }
        }

        return new EndpointSet(serviceName, sourceName, builder.ToImmutable(), version, updatedAt);
    }

    /// <summary>Returns whether both sets hold identical endpoints in every attribute, ignoring order.</summary>
    /// <param name="endpoints">The endpoints to compare with.</param>
    /// <returns><see langword="true"/> when nothing differs.</returns>
    public bool HasSameEndpoints(IReadOnlyCollection<DiscoveredEndpoint> endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.Count != Endpoints.Length)
        {
            return false;
        }

        var mine = new Dictionary<DiscoveredEndpoint, DiscoveredEndpoint>(Endpoints.Length);
        foreach (var endpoint in Endpoints)
        {
            mine[endpoint] = endpoint;
        }

        foreach (var endpoint in endpoints)
        {
            if (!mine.TryGetValue(endpoint, out var existing) || !existing.IsIdenticalTo(endpoint))
            {
                return false;
            }
        }

        return true;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{ServiceName}@{SourceName} v{Version} ({Endpoints.Length} endpoints)";
}
