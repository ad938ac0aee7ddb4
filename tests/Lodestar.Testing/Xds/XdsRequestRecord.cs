namespace Lodestar.Testing.Xds;

/// <summary>One request a client sent to the <see cref="FakeXdsServer"/>, state of the world or delta.</summary>
/// <param name="Stream">The stream it came on (1 for the first stream the server accepted).</param>
/// <param name="IsDelta">Whether it came on <c>DeltaAggregatedResources</c>.</param>
/// <param name="TypeUrl">The resource type.</param>
/// <param name="VersionInfo">The version the client accepted last (state of the world), or empty.</param>
/// <param name="ResponseNonce">The nonce of the response it answers, or empty.</param>
/// <param name="ResourceNames">The names requested (state of the world) or subscribed (delta).</param>
/// <param name="Unsubscribed">The names unsubscribed (delta).</param>
/// <param name="InitialVersions">The versions the client holds when it resumes (delta).</param>
/// <param name="ErrorCode">The <c>error_detail</c> code when the request is a NACK, else <see langword="null"/>.</param>
/// <param name="ErrorMessage">The <c>error_detail</c> message when the request is a NACK, else <see langword="null"/>.</param>
/// <param name="NodeId">The node id when the request carries the node, else <see langword="null"/>.</param>
public sealed record XdsRequestRecord(
    int Stream,
    bool IsDelta,
    string TypeUrl,
    string VersionInfo,
    string ResponseNonce,
    IReadOnlyList<string> ResourceNames,
    IReadOnlyList<string> Unsubscribed,
    IReadOnlyDictionary<string, string> InitialVersions,
    int? ErrorCode,
    string? ErrorMessage,
    string? NodeId)
{
    /// <summary>Gets whether the request rejects the response it answers.</summary>
    public bool IsNack => ErrorCode is not null;
}

/// <summary>One response the <see cref="FakeXdsServer"/> sent.</summary>
/// <param name="Stream">The stream it went on.</param>
/// <param name="TypeUrl">The resource type.</param>
/// <param name="VersionInfo">The version (state of the world) or system version (delta).</param>
/// <param name="Nonce">The nonce.</param>
/// <param name="ResourceNames">The resources it carried.</param>
/// <param name="Removed">The resources it removed (delta).</param>
public sealed record XdsResponseRecord(int Stream, string TypeUrl, string VersionInfo, string Nonce, IReadOnlyList<string> ResourceNames, IReadOnlyList<string> Removed);
