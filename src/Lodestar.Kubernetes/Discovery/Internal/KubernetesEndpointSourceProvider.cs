using System.Diagnostics.CodeAnalysis;
using Lodestar.Discovery;
using Lodestar.Kubernetes.Api.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Kubernetes.Discovery.Internal;

/// <summary>Serves services whose logical host reads as a Kubernetes service name, from their EndpointSlices.</summary>
internal sealed class KubernetesEndpointSourceProvider : IEndpointSourceProvider
{
    public const string SourceName = "kubernetes";

    private readonly KubernetesClientFactory _clients;
    private readonly IOptionsMonitor<KubernetesSourceOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;

    public KubernetesEndpointSourceProvider(KubernetesClientFactory clients, IOptionsMonitor<KubernetesSourceOptions> options, TimeProvider timeProvider,
        ILoggerFactory loggerFactory)
    {
        _clients = clients;
        _options = options;
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
    }

    public string Name => SourceName;

    public bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source)
    {
        var options = _options.CurrentValue;
        if (!KubernetesServiceName.TryParse(serviceName, options.ClusterDomain, out var service, out var ns))
        {
            source = null;
            return false;
        }

        source = new EndpointSliceSource(service, ns, options, _clients, _timeProvider, _loggerFactory.CreateLogger("Lodestar.Kubernetes"),
            shared: options.ShareNamespaceWatches ? _clients.SharedWatches : null);
        return true;
    }
}
