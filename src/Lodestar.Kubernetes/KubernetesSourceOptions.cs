using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Lodestar.Discovery;

namespace Lodestar.Kubernetes;

/// <summary>
/// Options of the Kubernetes EndpointSlice source, bound from the <c>Lodestar:Kubernetes</c> configuration section.
/// </summary>
/// <remarks>
/// The cluster is chosen as client-go chooses it: an explicit <see cref="KubeconfigPath"/> wins; otherwise the
/// in-cluster configuration when <c>KUBERNETES_SERVICE_HOST</c> is set; otherwise <c>KUBECONFIG</c> or
/// <c>~/.kube/config</c>.
/// </remarks>
public sealed class KubernetesSourceOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Lodestar:Kubernetes";

    /// <summary>The default <see cref="MaxListResponseBytes"/>: 64 MiB.</summary>
    public const long DefaultMaxListResponseBytes = 64L * 1024 * 1024;

    /// <summary>The default <see cref="MaxWatchEventBytes"/>: 16 MiB.</summary>
    public const long DefaultMaxWatchEventBytes = 16L * 1024 * 1024;

    /// <summary>The default <see cref="SharedWatchSelectorLimit"/>: 50 services.</summary>
    public const int DefaultSharedWatchSelectorLimit = 50;

    /// <summary>The default <see cref="WatchStallTimeout"/>: 150 seconds, two and a half bookmark periods of the API server.</summary>
    public static readonly TimeSpan DefaultWatchStallTimeout = TimeSpan.FromSeconds(150);

    private BackoffOptions _backoff = new();

    /// <summary>
    /// Gets or sets the kubeconfig file to use, or <see langword="null"/> (default) for the in-cluster configuration
    /// when running in a pod, else <c>KUBECONFIG</c> or <c>~/.kube/config</c>.
    /// </summary>
    public string? KubeconfigPath { get; set; }

    /// <summary>Gets or sets the kubeconfig context, or <see langword="null"/> (default) for its <c>current-context</c>.</summary>
    public string? Context { get; set; }

    /// <summary>
    /// Gets or sets the namespace of plain service names (<c>http://orders/</c>). Default <see langword="null"/>: the
    /// pod's namespace in-cluster, the context's namespace from kubeconfig, else <c>default</c>. DNS-style names
    /// (<c>orders.shop</c>, <c>orders.shop.svc.cluster.local</c>) carry their own namespace.
    /// </summary>
    public string? Namespace { get; set; }

    /// <summary>
    /// Gets or sets the name of the EndpointSlice port to send traffic to, or <see langword="null"/> (default) to use
    /// the only port; a service with several ports then reports an error naming them.
    /// </summary>
    public string? PortName { get; set; }

    /// <summary>Gets or sets the cluster DNS domain recognised in service names. Default <c>cluster.local</c>.</summary>
    [Required]
    public string ClusterDomain { get; set; } = "cluster.local";

    /// <summary>
    /// Gets or sets the sustained rate of non-watch requests per cluster (client-side limiter). Default 5, as in
    /// client-go; range 0.1 to 10,000.
    /// </summary>
    [Range(0.1, 10_000)]
    public double Qps { get; set; } = 5;

    /// <summary>Gets or sets how many non-watch requests may go out at once above <see cref="Qps"/>. Default 10, as in client-go; range 1 to 10,000.</summary>
    [Range(1, 10_000)]
    public int Burst { get; set; } = 10;

    /// <summary>
    /// Gets or sets how many EndpointSlices one LIST page asks for (<c>limit</c>). Default 500, as client-go's
    /// pager; range 1 to 10,000.
    /// </summary>
    [Range(1, 10_000)]
    public int PageSize { get; set; } = 500;

    /// <summary>
    /// Gets or sets how often a service-account or kubeconfig token file is read again; projected tokens rotate.
    /// Default 1 minute, as client-go's cached file token source; range 1 second to 1 hour.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan TokenRefreshInterval { get; set; } = TimeSpan.FromMinutes(1);

    // The obsolete aliases come before Backoff on purpose: configuration binding follows declaration order, so a value
    // under Lodestar:Kubernetes:Backoff overrides one given through an old key.
    /// <summary>
    /// Gets or sets the first backoff delay. Obsolete alias of <see cref="BackoffOptions.InitialDelay"/> on
    /// <see cref="Backoff"/> (<c>Lodestar:Kubernetes:Backoff:InitialDelay</c>), kept for one release; it still binds
    /// from <c>Lodestar:Kubernetes:RetryInitialDelay</c>. When both keys are set, the <c>Backoff</c> one wins.
    /// </summary>
    [Obsolete("Use Backoff.InitialDelay (Lodestar:Kubernetes:Backoff:InitialDelay). This alias will be removed in the next release.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public TimeSpan RetryInitialDelay
    {
        get => Backoff.InitialDelay;
        set => Backoff.InitialDelay = value;
    }

    /// <summary>
    /// Gets or sets the longest backoff delay. Obsolete alias of <see cref="BackoffOptions.MaxDelay"/> on
    /// <see cref="Backoff"/> (<c>Lodestar:Kubernetes:Backoff:MaxDelay</c>), kept for one release; it still binds from
    /// <c>Lodestar:Kubernetes:RetryMaxDelay</c>. When both keys are set, the <c>Backoff</c> one wins.
    /// </summary>
    [Obsolete("Use Backoff.MaxDelay (Lodestar:Kubernetes:Backoff:MaxDelay). This alias will be removed in the next release.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public TimeSpan RetryMaxDelay
    {
        get => Backoff.MaxDelay;
        set => Backoff.MaxDelay = value;
    }

    /// <summary>
    /// Gets or sets how long the source must go without a failure for the backoff to start over. Obsolete alias of
    /// <see cref="BackoffOptions.ResetAfter"/> on <see cref="Backoff"/> (<c>Lodestar:Kubernetes:Backoff:ResetAfter</c>),
    /// kept for one release; it still binds from <c>Lodestar:Kubernetes:BackoffResetAfter</c>. When both keys are set,
    /// the <c>Backoff</c> one wins.
    /// </summary>
    [Obsolete("Use Backoff.ResetAfter (Lodestar:Kubernetes:Backoff:ResetAfter). This alias will be removed in the next release.")]
    [EditorBrowsable(EditorBrowsableState.Never)]
    public TimeSpan BackoffResetAfter
    {
        get => Backoff.ResetAfter;
        set => Backoff.ResetAfter = value;
    }
    /// <summary>
    /// Gets or sets how the source waits between failed lists and watches: capped exponential backoff with full jitter
    /// that starts over after a quiet period. Defaults are client-go's reflector (800 ms, 30 s, 2 minutes). Bound from
    /// <c>Lodestar:Kubernetes:Backoff</c>.
    /// </summary>
    /// <exception cref="ArgumentNullException">The value is <see langword="null"/>.</exception>
    public BackoffOptions Backoff
    {
        get => _backoff;
        set => _backoff = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>
    /// Gets or sets the most bytes one LIST response may have once decompressed. Default 64 MiB; range 64 KiB to 2 GiB.
    /// </summary>
    /// <remarks>
    /// A page of <see cref="PageSize"/> (500) EndpointSlices of the controller's 100 endpoints each is about 16 MB of
    /// JSON, so the default leaves four times that; the unpaged list that follows an expired continue token carries the
    /// whole service. A larger answer fails at once, naming the API server and this limit, instead of being buffered; the
    /// last good endpoint set stays in force. Raise it (or lower <see cref="PageSize"/>) only for a service larger than that.
    /// </remarks>
    public long MaxListResponseBytes { get; set; } = DefaultMaxListResponseBytes;

    /// <summary>Gets or sets the most bytes one watch event (one line of the stream) may have. Default 16 MiB; range 64 KiB to 1 GiB.</summary>
    /// <remarks>
    /// One event carries one EndpointSlice: at most 1,000 endpoints by API validation and at most etcd's request limit
    /// (1.5 MiB by default) as stored, a few MiB as JSON. The default is ten times the largest valid slice; a longer line
    /// fails the watch as soon as the limit is crossed (the reader never holds more than the limit), naming the API server
    /// and this limit, and the source resumes from the last resourceVersion with backoff.
    /// </remarks>
    public long MaxWatchEventBytes { get; set; } = DefaultMaxWatchEventBytes;

    /// <summary>
    /// Gets or sets how long a watch may send nothing (no event, no bookmark) before the source ends it as stalled and
    /// resumes from the last resourceVersion. Default 150 seconds; <see cref="TimeSpan.Zero"/> turns detection off;
    /// otherwise 70 seconds to 1 hour.
    /// </summary>
    /// <remarks>
    /// Watches ask for bookmarks (<c>allowWatchBookmarks=true</c>), and the API server's watch cache sends each such watch
    /// a BOOKMARK roughly every minute (plus one 2 seconds before the watch's timeout), so a healthy stream is never quiet
    /// for much more than a minute. 150 seconds is two bookmark periods and a half: one bookmark may be lost or late
    /// without a restart, and a connection that died silently is noticed within minutes rather than after the watch
    /// timeout (5 to 10 minutes). An API server that sends no bookmarks (watch cache disabled) gets a quiet watch
    /// restarted from its last resourceVersion every period, which costs one request; set it to zero there.
    /// </remarks>
    public TimeSpan WatchStallTimeout { get; set; } = DefaultWatchStallTimeout;

    /// <summary>
    /// Gets or sets how lists and watch events are encoded on the wire. Default <see cref="KubernetesEncoding.Auto"/>:
    /// protobuf when the API server offers it (every kube-apiserver does for EndpointSlices), else JSON.
    /// </summary>
    /// <remarks>
    /// Protobuf makes a list or an event several times smaller than JSON and faster to read (see the Kubernetes page of
    /// the documentation for figures). <see cref="KubernetesEncoding.Json"/> suits a proxy or an aggregated server that
    /// mishandles protobuf; <see cref="MaxListResponseBytes"/> and <see cref="MaxWatchEventBytes"/> apply to either.
    /// </remarks>
    public KubernetesEncoding Encoding { get; set; } = KubernetesEncoding.Auto;

    /// <summary>
    /// Gets or sets whether the services of one namespace watched through one API server share one LIST+WATCH.
    /// Default <see langword="true"/>; <see langword="false"/> gives every service its own list and watch.
    /// </summary>
    /// <remarks>
    /// Shared, the services of a namespace are listed and watched together, with the label selector
    /// <c>kubernetes.io/service-name in (...)</c> or, above <see cref="SharedWatchSelectorLimit"/> services, the whole
    /// namespace filtered on the client; one open watch serves them all, as client-go's shared informers do. A service
    /// that joins makes the shared watch list again with the new selector (or is served from what is already known
    /// when the selector covers it); one that leaves costs no request. Each service keeps its own backoff, errors and
    /// reconnect count; a failure of the shared watch is reported to every service on it, and the last good endpoint
    /// set of each stays in force. The options of the first service on a shared watch (encoding, page size, byte caps,
    /// stall timeout, backoff of the shared list and watch) apply to the shared requests.
    /// </remarks>
    public bool ShareNamespaceWatches { get; set; } = true;

    /// <summary>
    /// Gets or sets how many services of one namespace a shared watch names in its label selector; with more, it
    /// watches the whole namespace and keeps only the EndpointSlices of the services followed. Default 50; range 1 to 1000.
    /// </summary>
    /// <remarks>
    /// A selector naming each service keeps the traffic to the services followed but makes the request line grow with
    /// every name and makes each joining service cost a new list; the whole namespace costs one list whatever joins,
    /// and the traffic of the services nobody follows. Above some tens of services, most of a namespace is usually
    /// followed anyway.
    /// </remarks>
    public int SharedWatchSelectorLimit { get; set; } = DefaultSharedWatchSelectorLimit;
}
