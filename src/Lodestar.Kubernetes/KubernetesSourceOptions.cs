using System.ComponentModel.DataAnnotations;

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

    /// <summary>
    /// Gets or sets the first delay after a failed list or watch; later delays double up to <see cref="RetryMaxDelay"/>,
    /// with full jitter. Default 800 ms, as client-go's reflector; range 10 ms to 1 minute.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan RetryInitialDelay { get; set; } = TimeSpan.FromMilliseconds(800);

    /// <summary>Gets or sets the longest delay between failed attempts. Default 30 seconds, as client-go's reflector; range 10 ms to 10 minutes.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Gets or sets how long a watch must stay healthy before the retry delay starts again from
    /// <see cref="RetryInitialDelay"/>. Default 2 minutes, as client-go's reflector; range 0 to 1 hour.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan BackoffResetAfter { get; set; } = TimeSpan.FromMinutes(2);
}
