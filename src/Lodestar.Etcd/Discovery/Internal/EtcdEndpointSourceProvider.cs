using System.Diagnostics.CodeAnalysis;
using Lodestar.Discovery;
using Lodestar.Etcd.Client.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Etcd.Discovery.Internal;

/// <summary>Serves any service from etcd: its instances are the keys under <c>{Prefix}{service}/</c>.</summary>
internal sealed class EtcdEndpointSourceProvider : IEndpointSourceProvider
{
    public const string SourceName = "etcd";

    private readonly EtcdClient _client;
    private readonly IOptions<EtcdOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<EtcdEndpointSource> _logger;

    public EtcdEndpointSourceProvider(EtcdClient client, IOptions<EtcdOptions> options, TimeProvider timeProvider, ILogger<EtcdEndpointSource> logger)
    {
        _client = client;
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    public string Name => SourceName;

    public bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source)
    {
        source = string.IsNullOrEmpty(serviceName)
            ? null
            : new EtcdEndpointSource(serviceName, _client, _options.Value, _timeProvider, _logger);
        return source is not null;
    }
}
