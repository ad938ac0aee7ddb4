using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Lodestar.Discovery.Configuration.Internal;

/// <summary>Serves services declared in <see cref="IConfiguration"/>, following its reloads.</summary>
internal sealed class ConfigurationEndpointSourceProvider : IEndpointSourceProvider
{
    public const string SourceName = "configuration";

    private readonly IConfiguration _configuration;
    private readonly IOptionsMonitor<ConfigurationSourceOptions> _options;

    public ConfigurationEndpointSourceProvider(IConfiguration configuration, IOptionsMonitor<ConfigurationSourceOptions> options)
    {
        _configuration = configuration;
        _options = options;
    }

    public string Name => SourceName;

    public bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source)
    {
        var options = _options.CurrentValue;
        // Only the Endpoints key declares a service here: the same section also carries per-service settings
        // (OutlierDetection, HealthChecks, CircuitBreaker) of services that another source serves.
        var exists = _configuration.GetSection(options.SectionName).GetSection(serviceName).GetSection("Endpoints").Exists()
                     || (!string.IsNullOrEmpty(options.CompatibilitySectionName)
                         && _configuration.GetSection(options.CompatibilitySectionName).GetSection(serviceName).Exists());
        source = exists ? new ConfigurationEndpointSource(serviceName, _configuration, options) : null;
        return exists;
    }
}
