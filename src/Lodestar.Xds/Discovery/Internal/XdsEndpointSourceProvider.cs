using System.Diagnostics.CodeAnalysis;
using Lodestar.Discovery;
using Lodestar.Xds.Client.Internal;
using Lodestar.Xds.Clusters.Internal;
using Lodestar.Xds.Endpoints.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Xds.Discovery.Internal;

/// <summary>Serves any service name as the xDS cluster of that name.</summary>
internal sealed class XdsEndpointSourceProvider : IEndpointSourceProvider
{
    public const string SourceName = "xds";

    private readonly XdsClientProvider _clients;
    private readonly ILogger<XdsEndpointSource> _logger;
    private readonly XdsClusterOptions? _clusterOptions;
    private readonly XdsDropOverloads? _drops;
    private readonly TimeProvider? _timeProvider;

    public XdsEndpointSourceProvider(XdsClientProvider clients, ILogger<XdsEndpointSource> logger, XdsClusterOptions? clusterOptions = null, XdsDropOverloads? drops = null,
        TimeProvider? timeProvider = null)
    {
        _timeProvider = timeProvider;
        _clients = clients;
        _logger = logger;
        _clusterOptions = clusterOptions;
        _drops = drops;
    }

    public string Name => SourceName;

    public bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source)
    {
        source = string.IsNullOrEmpty(serviceName) ? null : new XdsEndpointSource(serviceName, _clients, _logger, _clusterOptions, _drops, _timeProvider);
        return source is not null;
    }
}
