namespace Lodestar.Xds.Client.Internal;

/// <summary>One rejection (NACK) of a response.</summary>
/// <param name="Version">The rejected response's version.</param>
/// <param name="Nonce">The rejected response's nonce.</param>
/// <param name="Message">The <c>error_detail</c> sent back, naming each rejected resource.</param>
/// <param name="At">When it was rejected.</param>
internal sealed record XdsNack(string Version, string Nonce, string Message, DateTimeOffset At);

/// <summary>What the client holds for one resource type.</summary>
/// <param name="TypeUrl">The type.</param>
/// <param name="AcceptedVersion">The last accepted response version (state of the world), or empty.</param>
/// <param name="Wildcard">Whether the type is subscribed with a wildcard.</param>
/// <param name="LastNack">The last rejection, or <see langword="null"/>.</param>
/// <param name="Resources">The resources, by name.</param>
/// <param name="Nonce">The nonce of the last response received, or empty.</param>
internal sealed record XdsTypeDump(string TypeUrl, string AcceptedVersion, bool Wildcard, XdsNack? LastNack, IReadOnlyList<XdsResourceDump> Resources, string Nonce = "");

/// <summary>What the client holds for one resource.</summary>
/// <param name="Name">The resource name.</param>
/// <param name="Version">Its version (delta), or <see langword="null"/>.</param>
/// <param name="Status"><c>accepted</c>, <c>requested</c> (not received yet) or <c>does-not-exist</c>.</param>
/// <param name="Value">The accepted model, or <see langword="null"/>.</param>
/// <param name="Watchers">How many watchers it has.</param>
internal sealed record XdsResourceDump(string Name, string? Version, string Status, object? Value, int Watchers);
