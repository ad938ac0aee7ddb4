using System.Diagnostics.CodeAnalysis;
using Lodestar.Discovery;
using Lodestar.Dns.Internal;
using Lodestar.Dns.Resolver.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Dns.Discovery.Internal;

/// <summary>Serves any service whose name is a valid DNS name, an <c>_service._proto.name</c> or a configured SRV name.</summary>
internal sealed class DnsEndpointSourceProvider : IEndpointSourceProvider
{
    public const string SourceName = "dns";

    private readonly IOptionsMonitor<DnsSourceOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILoggerFactory _loggerFactory;

    public DnsEndpointSourceProvider(IOptionsMonitor<DnsSourceOptions> options, TimeProvider timeProvider, ILoggerFactory loggerFactory)
    {
        _options = options;
        _timeProvider = timeProvider;
        _loggerFactory = loggerFactory;
    }

    public string Name => SourceName;

    public bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source)
    {
        source = null;
        var options = _options.CurrentValue;
        if (!DnsServiceQuery.TryParse(serviceName, options, out var query))
        {
            return false;
        }

        var resolver = new DnsStubResolver(DnsResolverSettingsFactory.Create(options), _timeProvider, _loggerFactory.CreateLogger<DnsStubResolver>());
        source = new DnsEndpointSource(serviceName, query, resolver, options, _timeProvider, _loggerFactory.CreateLogger<DnsEndpointSource>());
        return true;
    }
}
