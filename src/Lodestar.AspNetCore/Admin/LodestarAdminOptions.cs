using Lodestar.Discovery;

namespace Lodestar.AspNetCore.Admin;

/// <summary>
/// Options of the admin API and page mapped by <c>MapLodestarAdmin</c>: who may call them and what they show.
/// </summary>
/// <remarks>
/// The admin view is read-only, but it tells a caller the topology and health of every service this process calls.
/// By default only loopback callers are answered; open it with <see cref="AllowRemoteCallers"/> together with
/// <c>.RequireAuthorization()</c> on the builder <c>MapLodestarAdmin</c> returns.
/// </remarks>
public sealed class LodestarAdminOptions
{
    /// <summary>The configuration section these options bind from: <c>Lodestar:Admin</c>.</summary>
    public const string SectionName = "Lodestar:Admin";

    /// <summary>
    /// Gets or sets whether callers that are not on a loopback address are answered. Default <see langword="false"/>:
    /// they get 403. Behind a reverse proxy on the same host every caller looks local, so require authorization there.
    /// </summary>
    public bool AllowRemoteCallers { get; set; }

    /// <summary>
    /// Gets the endpoint metadata keys shown (case-insensitive); empty (the default) shows every key not in
    /// <see cref="HiddenMetadataKeys"/>.
    /// </summary>
    public IList<string> MetadataKeys { get; } = [];

    /// <summary>
    /// Gets the fragments that hide a metadata key when it contains one of them (case-insensitive). Default:
    /// <c>password</c>, <c>passwd</c>, <c>token</c>, <c>secret</c>, <c>credential</c>, <c>authorization</c>,
    /// <c>apikey</c>, <c>api-key</c>, <c>api_key</c>, <c>private</c>.
    /// </summary>
    public IList<string> HiddenMetadataKeys { get; } =
        ["password", "passwd", "token", "secret", "credential", "authorization", "apikey", "api-key", "api_key", "private"];

    /// <summary>
    /// Gets or sets the redactor every string of a response passes through (error messages, metadata values, event
    /// details); add the process's own secrets to it. Default <see cref="SecretRedactor.Default"/>, which masks
    /// credentials in recognisable forms and user-info in URIs.
    /// </summary>
    public SecretRedactor Redactor { get; set; } = SecretRedactor.Default;

    /// <summary>Gets or sets how often the admin page polls the API. Default 2 seconds; 250 ms to 1 minute.</summary>
    public TimeSpan PageRefreshInterval { get; set; } = TimeSpan.FromSeconds(2);
}
