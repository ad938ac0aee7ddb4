namespace Lodestar.Xds.Diagnostics;

/// <summary>
/// Reads what the xDS client holds: per resource type the accepted version and the last rejection (NACK), per resource
/// its status, version and a one-line summary. For tools (<c>lodestar xds dump</c>) and diagnostics pages.
/// </summary>
public interface IXdsInspector
{
    /// <summary>
    /// Subscribes to the listeners and clusters named (every one, by wildcard, when none are named), follows them to
    /// their route configurations and endpoint assignments, collects for <paramref name="collectFor"/> and returns what
    /// was received. The subscriptions end when the call returns.
    /// </summary>
    /// <param name="listeners">Listener names, or <see langword="null"/> or empty for every listener.</param>
    /// <param name="clusters">Cluster names, or <see langword="null"/> or empty for every cluster.</param>
    /// <param name="collectFor">How long to wait for the control plane's answers before reading.</param>
    /// <param name="cancellationToken">Ends the wait early; what arrived until then is returned.</param>
    /// <returns>The resources and their state.</returns>
    Task<XdsInspection> InspectAsync(IReadOnlyCollection<string>? listeners, IReadOnlyCollection<string>? clusters, TimeSpan collectFor,
        CancellationToken cancellationToken);
}

/// <summary>What the xDS client holds.</summary>
/// <param name="Server">The management server, as the bootstrap names it (no credentials).</param>
/// <param name="Types">Per resource type, its accepted version and last rejection.</param>
/// <param name="Resources">Every resource subscribed to.</param>
public sealed record XdsInspection(string Server, IReadOnlyList<XdsTypeInspection> Types, IReadOnlyList<XdsResourceInspection> Resources);

/// <summary>The state of one resource type.</summary>
/// <param name="Type">The short type name (<c>Listener</c>, <c>RouteConfiguration</c>, <c>Cluster</c>, <c>ClusterLoadAssignment</c>).</param>
/// <param name="TypeUrl">The full type URL.</param>
/// <param name="AcceptedVersion">The last accepted response version (state of the world), or empty.</param>
/// <param name="Wildcard">Whether the type is subscribed with a wildcard.</param>
/// <param name="LastNack">The last rejection, or <see langword="null"/>.</param>
public sealed record XdsTypeInspection(string Type, string TypeUrl, string AcceptedVersion, bool Wildcard, XdsNackInspection? LastNack);

/// <summary>One rejected response.</summary>
/// <param name="Version">The rejected response's version.</param>
/// <param name="Nonce">The rejected response's nonce.</param>
/// <param name="Message">The <c>error_detail</c> sent back, naming each rejected resource.</param>
/// <param name="At">When it was rejected.</param>
public sealed record XdsNackInspection(string Version, string Nonce, string Message, DateTimeOffset At);

/// <summary>The state of one resource.</summary>
/// <param name="Type">The short type name.</param>
/// <param name="Name">The resource name.</param>
/// <param name="Status"><c>accepted</c>, <c>requested</c> (not received yet) or <c>does-not-exist</c>.</param>
/// <param name="Version">The version it was accepted at, or <see langword="null"/>.</param>
/// <param name="Summary">One line describing it (routes, policy, endpoint count), or <c>-</c>.</param>
public sealed record XdsResourceInspection(string Type, string Name, string Status, string? Version, string Summary);
