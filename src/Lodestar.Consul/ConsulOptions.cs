using System.ComponentModel;
using Lodestar.Discovery;

namespace Lodestar.Consul;

/// <summary>
/// Options of the Consul source and registrar, bound from the <c>Lodestar:Consul</c> configuration section. Unset
/// connection settings fall back to Consul's own environment variables (<c>CONSUL_HTTP_ADDR</c>,
/// <c>CONSUL_HTTP_TOKEN</c>, <c>CONSUL_CACERT</c>, <c>CONSUL_CLIENT_CERT</c>, <c>CONSUL_CLIENT_KEY</c>).
/// </summary>
public sealed class ConsulOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Lodestar:Consul";

    /// <summary>The address used when neither the options nor <c>CONSUL_HTTP_ADDR</c> give one.</summary>
    public const string DefaultAddress = "http://127.0.0.1:8500";

    /// <summary>The default <see cref="MaxResponseBytes"/>: 64 MiB.</summary>
    public const long DefaultMaxResponseBytes = 64L * 1024 * 1024;

    /// <summary>
    /// Gets or sets the agent's HTTP API address, for example <c>http://127.0.0.1:8500</c> or
    /// <c>https://consul.local:8501</c>. Default: <c>CONSUL_HTTP_ADDR</c>, else <see cref="DefaultAddress"/>.
    /// </summary>
    public string? Address { get; set; }

    /// <summary>
    /// Gets or sets the ACL token sent in the <c>X-Consul-Token</c> header. Default: <c>CONSUL_HTTP_TOKEN</c>, else none.
    /// The token is never logged nor put into error messages.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>Gets or sets the datacenter to query (<c>dc</c>), or <see langword="null"/> (default) for the agent's own.</summary>
    public string? Datacenter { get; set; }

    /// <summary>Gets or sets the Consul Enterprise namespace (<c>ns</c>), or <see langword="null"/> (default) for the token's default.</summary>
    public string? Namespace { get; set; }

    /// <summary>Gets or sets the Consul Enterprise admin partition (<c>partition</c>), or <see langword="null"/> (default).</summary>
    public string? Partition { get; set; }

    /// <summary>
    /// Gets or sets tags an instance must carry to be discovered (every tag must match, as repeated <c>tag</c>
    /// parameters do in Consul). Empty by default.
    /// </summary>
    public IList<string> Tags { get; } = [];

    /// <summary>
    /// Gets or sets whether only instances whose checks all pass are discovered (<c>?passing</c>). Default
    /// <see langword="true"/>. When <see langword="false"/>, instances with a warning check are discovered too, weighted
    /// by their service's <c>Weights.Warning</c>; critical instances are always left out.
    /// </summary>
    public bool PassingOnly { get; set; } = true;

    /// <summary>
    /// Gets or sets the <c>wait</c> of each blocking query: how long the agent may hold a query open when nothing
    /// changes. Default 5 minutes (Consul's default); 100 ms to 10 minutes (Consul's maximum).
    /// </summary>
    public TimeSpan WaitTime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Gets or sets the least time between the starts of two blocking queries, so that an index that keeps changing or
    /// a buggy index cannot make the loop spin (Consul's documented rate-limit rule). Default 20 ms; 1 ms to 10 s.
    /// </summary>
    public TimeSpan MinQueryInterval { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Gets or sets the first retry delay after an error. Obsolete: an alias of <see cref="BackoffOptions.InitialDelay"/>
    /// of <see cref="Backoff"/>, kept for one release; it still binds from configuration (<c>Lodestar:Consul:RetryInitialDelay</c>),
    /// and <c>Lodestar:Consul:Backoff:InitialDelay</c> wins when both are set.
    /// </summary>
    [Obsolete("Use Backoff.InitialDelay (configuration key Lodestar:Consul:Backoff:InitialDelay).")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public TimeSpan RetryInitialDelay
    {
        get => Backoff.InitialDelay;
        set => Backoff.InitialDelay = value;
    }

    /// <summary>
    /// Gets or sets the cap of the retry delay. Obsolete: an alias of <see cref="BackoffOptions.MaxDelay"/> of
    /// <see cref="Backoff"/>, kept for one release; it still binds from configuration (<c>Lodestar:Consul:RetryMaxDelay</c>),
    /// and <c>Lodestar:Consul:Backoff:MaxDelay</c> wins when both are set.
    /// </summary>
    [Obsolete("Use Backoff.MaxDelay (configuration key Lodestar:Consul:Backoff:MaxDelay).")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public TimeSpan RetryMaxDelay
    {
        get => Backoff.MaxDelay;
        set => Backoff.MaxDelay = value;
    }

    /// <summary>
    /// Gets how the source waits between failed queries and the registrar between failed heartbeats: capped exponential
    /// backoff with full jitter that starts over after <see cref="BackoffOptions.ResetAfter"/> without a failure
    /// (defaults 800 ms, 30 s and 2 minutes, client-go's). Bound from <c>Lodestar:Consul:Backoff</c>.
    /// </summary>
    /// <remarks>Declared after the obsolete aliases so that configuration binds it last: its keys win over theirs.</remarks>
    public BackoffOptions Backoff { get; } = new();

    /// <summary>
    /// Gets or sets the most bytes one answer of the agent may have; a larger answer is not read, the error names the
    /// agent and this limit, and the last good endpoint set stays in force. Default 64 MiB; 1 KiB to 1 GiB.
    /// </summary>
    /// <remarks>
    /// The answer is read through a stream that stops at this limit (a larger <c>Content-Length</c> is refused before
    /// reading), into pooled segments, then parsed entry by entry: an answer over the limit costs about the limit once,
    /// whatever its size. The default is far above what a real cluster sends: a health entry (node, service and its
    /// checks) is 1 to 3 KB, so 64 MiB holds more than 20,000 instances, or 6,000 whose two checks both carry Consul's
    /// largest check output (4 KB, <c>check_output_max_size</c>).
    /// </remarks>
    public long MaxResponseBytes { get; set; } = DefaultMaxResponseBytes;

    /// <summary>
    /// Gets or sets the timeout of calls that do not block (the first read of a service, registration, heartbeats) and of
    /// connecting. It is also the margin of a blocking query: one that has not answered within <see cref="WaitTime"/>, plus
    /// Consul's jitter of up to wait/16, plus <see cref="MinQueryInterval"/>, plus this, is stalled; the source ends it and
    /// resumes from the same index. Default 10 seconds; 100 ms to 5 minutes.
    /// </summary>
    /// <remarks>
    /// The margin covers what lies between the agent and the answer: the agent forwards the query to a server, which
    /// holds it up to Consul's <c>rpc_hold_timeout</c> (7 s by default) while a leader is elected, and the network.
    /// </remarks>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Gets or sets the metadata key (service meta first, then node meta) whose value becomes the endpoint's zone.
    /// Default <c>zone</c>.
    /// </summary>
    public string ZoneMetadataKey { get; set; } = "zone";

    /// <summary>
    /// Gets or sets how long a registered instance may stay critical before Consul removes it
    /// (<c>DeregisterCriticalServiceAfter</c>). Default 1 minute, which is also the least a real Consul agent honours (its
    /// reaper runs about every 30 seconds); at least 1 second.
    /// </summary>
    public TimeSpan DeregisterCriticalServiceAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Gets or sets how often Consul runs a registered HTTP check. Default 10 seconds; at least 100 ms.</summary>
    public TimeSpan HttpCheckInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Gets or sets the timeout of a registered HTTP check. Default 5 seconds; at least 100 ms.</summary>
    public TimeSpan HttpCheckTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Gets or sets the PEM file of the certificate authority that signs the agent's certificate, or
    /// <see langword="null"/> (default: <c>CONSUL_CACERT</c>, else the system store).
    /// </summary>
    public string? CaCertificatePath { get; set; }

    /// <summary>Gets or sets the PEM file of the client certificate for mutual TLS (default: <c>CONSUL_CLIENT_CERT</c>).</summary>
    public string? ClientCertificatePath { get; set; }

    /// <summary>Gets or sets the PEM file of the client certificate's private key (default: <c>CONSUL_CLIENT_KEY</c>).</summary>
    public string? ClientKeyPath { get; set; }

    /// <summary>
    /// Gets or sets whether the agent's certificate is accepted without verification. Default <see langword="false"/>;
    /// for development only (<c>CONSUL_HTTP_SSL_VERIFY=false</c> sets it).
    /// </summary>
    public bool TlsSkipVerify { get; set; }
}
