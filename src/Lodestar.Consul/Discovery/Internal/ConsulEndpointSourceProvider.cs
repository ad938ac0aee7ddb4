using System.Diagnostics.CodeAnalysis;
using Lodestar.Consul.Internal;
using Lodestar.Discovery;
using Microsoft.Extensions.Logging;

namespace Lodestar.Consul.Discovery.Internal;

/// <summary>Creates a Consul source for any service name: Consul answers with an empty set for unknown services.</summary>
internal sealed class ConsulEndpointSourceProvider : IEndpointSourceProvider
{
    public const string SourceName = "consul";

    private readonly ConsulApi _api;
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;

    public ConsulEndpointSourceProvider(ConsulApi api, TimeProvider timeProvider, ILoggerFactory loggerFactory)
    {
        _api = api;
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
    }

    public string Name => SourceName;

    public bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source)
    {
        source = new ConsulEndpointSource(serviceName, _api, _timeProvider, _loggerFactory.CreateLogger("Lodestar.Consul"));
        return true;
    }
}
