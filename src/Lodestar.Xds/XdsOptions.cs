using Lodestar.Discovery;

namespace Lodestar.Xds;

/// <summary>
/// Options of the xDS client and of the <c>xds</c> endpoint source, bound from the <c>Lodestar:Xds</c> configuration
/// section and validated at startup (including the bootstrap they point to).
/// </summary>
/// <remarks>
/// The control plane, the node identity and the channel credentials come from a gRPC xDS bootstrap, the same file
/// grpc-go and grpc-java read, so the bootstrap Istio injects into proxyless workloads works unchanged. It is found
/// in this order: <see cref="BootstrapPath"/>, <see cref="BootstrapJson"/>, the file named by the
/// <c>GRPC_XDS_BOOTSTRAP</c> environment variable, the JSON in <c>GRPC_XDS_BOOTSTRAP_CONFIG</c>.
/// </remarks>
public sealed class XdsOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Lodestar:Xds";

    /// <summary>The default <see cref="ResourceDoesNotExistTimeout"/>: 15 seconds, as gRPC's xDS clients.</summary>
    public static readonly TimeSpan DefaultResourceDoesNotExistTimeout = TimeSpan.FromSeconds(15);

    /// <summary>The default <see cref="StallTimeout"/>: 5 minutes.</summary>
    public static readonly TimeSpan DefaultStallTimeout = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets the path of the bootstrap file, or <see langword="null"/> (default) to use
    /// <see cref="BootstrapJson"/> or the <c>GRPC_XDS_BOOTSTRAP</c> / <c>GRPC_XDS_BOOTSTRAP_CONFIG</c> environment variables.
    /// </summary>
    public string? BootstrapPath { get; set; }

    /// <summary>Gets or sets the bootstrap itself as JSON, or <see langword="null"/> (default).</summary>
    public string? BootstrapJson { get; set; }

    /// <summary>
    /// Gets or sets whether to use incremental (delta) xDS, <c>DeltaAggregatedResources</c>. Default
    /// <see langword="false"/> (state of the world, as gRPC). When the server answers delta with <c>UNIMPLEMENTED</c>, the
    /// client falls back to state of the world on that server.
    /// </summary>
    public bool UseDelta { get; set; }

    /// <summary>
    /// Gets or sets how long after a resource was requested the client waits for it before telling its watchers that it
    /// does not exist (gRFC A27's resource-does-not-exist timer; the clock runs only while the stream is up). Default
    /// 15 seconds; range 1 second to 10 minutes.
    /// </summary>
    public TimeSpan ResourceDoesNotExistTimeout { get; set; } = DefaultResourceDoesNotExistTimeout;

    /// <summary>
    /// Gets or sets how long the stream may stay without any response while a request of the client is unanswered
    /// before the client ends it and reconnects with backoff, or <see cref="TimeSpan.Zero"/> to trust the stream.
    /// Default 5 minutes; range 0 or 1 second to 1 hour.
    /// </summary>
    public TimeSpan StallTimeout { get; set; } = DefaultStallTimeout;

    /// <summary>
    /// Gets or sets a file holding a bearer token sent to the control plane as <c>authorization</c> on every stream, or
    /// <see langword="null"/> (default) to use the bootstrap's <c>call_creds</c> of type <c>jwt_token_file</c>. The
    /// file is read again each time a stream opens, so a rotated token is picked up; the token never appears in logs.
    /// </summary>
    public string? TokenPath { get; set; }

    /// <summary>
    /// Gets or sets the delays between failed streams (bound from <c>Lodestar:Xds:Backoff</c>). The backoff starts
    /// over once a stream has received a response.
    /// </summary>
    public BackoffOptions Backoff { get; set; } = new();
}
