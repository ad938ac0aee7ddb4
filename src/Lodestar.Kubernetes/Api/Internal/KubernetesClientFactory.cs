using System.Collections.Concurrent;
using Lodestar.Kubernetes.Discovery.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// Creates one <see cref="KubernetesApiClient"/> (and so one <see cref="HttpClient"/>) per cluster the options
/// select, shared by every service that watches it.
/// </summary>
internal sealed class KubernetesClientFactory : IDisposable
{
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ConcurrentDictionary<(string? Kubeconfig, string? Context), Lazy<KubernetesApiClient>> _clients = new();

    public KubernetesClientFactory(TimeProvider timeProvider, ILoggerFactory loggerFactory)
    {
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
        SharedWatches = new NamespaceWatchHubs(this, timeProvider, loggerFactory);
    }

    /// <summary>Gets the shared namespace watches running on these clients.</summary>
    public NamespaceWatchHubs SharedWatches { get; }

    /// <summary>Gets or sets how environment variables are read (a seam for tests).</summary>
    public Func<string, string?> Environment { get; set; } = System.Environment.GetEnvironmentVariable;

    /// <summary>Gets or sets the service-account folder read in a pod (a seam for tests).</summary>
    public string ServiceAccountDirectory { get; set; } = InClusterConfig.ServiceAccountDirectory;

    /// <summary>Gets or sets the home folder holding <c>.kube/config</c>, or <see langword="null"/> for the user's.</summary>
    public string? HomeDirectory { get; set; }

    /// <summary>Chooses the cluster configuration as client-go does: explicit kubeconfig, else in-cluster, else kubeconfig.</summary>
    /// <exception cref="KubernetesApiException">The configuration cannot be read.</exception>
    public ClusterConfig LoadConfig(KubernetesSourceOptions options)
    {
        if (string.IsNullOrEmpty(options.KubeconfigPath) && string.IsNullOrEmpty(options.Context) && InClusterConfig.IsAvailable(Environment))
        {
            return InClusterConfig.Load(Environment, ServiceAccountDirectory);
        }

        return KubeconfigLoader.Load(KubeconfigLoader.GetPaths(options.KubeconfigPath, Environment, HomeDirectory), options.Context);
    }

    /// <summary>Gets the shared client of the cluster the options select.</summary>
    /// <exception cref="KubernetesApiException">The configuration cannot be read; the next call tries again.</exception>
    public KubernetesApiClient GetClient(KubernetesSourceOptions options)
    {
        var key = (options.KubeconfigPath, options.Context);
        var lazy = _clients.GetOrAdd(key, static (_, state) => new Lazy<KubernetesApiClient>(() =>
        {
            var (self, options) = state;
            var config = self.LoadConfig(options);
            return new KubernetesApiClient(config, options.Qps, options.Burst, options.TokenRefreshInterval, self._timeProvider,
                self._loggerFactory.CreateLogger("Lodestar.Kubernetes"));
        }, LazyThreadSafetyMode.ExecutionAndPublication), (this, options));
        try
        {
            return lazy.Value;
        }
        catch
        {
            // A configuration that could not be read is not cached: it may be fixed while the process runs.
            _clients.TryRemove(new KeyValuePair<(string?, string?), Lazy<KubernetesApiClient>>(key, lazy));
            throw;
        }
    }

    public void Dispose()
    {
        SharedWatches.Dispose();
        foreach (var lazy in _clients.Values)
        {
            if (lazy.IsValueCreated)
            {
                lazy.Value.Dispose();
            }
        }

        _clients.Clear();
    }
}
