using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Discovery.Configuration.Internal;

/// <summary>Serves services declared in <see cref="IConfiguration"/>, following its reloads.</summary>
internal sealed class ConfigurationEndpointSourceProvider : IEndpointSourceProvider
{
    public const string SourceName = "configuration";

    private readonly IConfiguration _configuration;
    private readonly IOptionsMonitor<ConfigurationSourceOptions> _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger? _logger;

    public ConfigurationEndpointSourceProvider(IConfiguration configuration, IOptionsMonitor<ConfigurationSourceOptions> options, TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null)
    {
        _configuration = configuration;
        _options = options;
        _timeProvider = timeProvider ?? TimeProvider.System;
        _logger = loggerFactory?.CreateLogger("Lodestar.Discovery.Configuration");
    }

    public string Name => SourceName;

    public bool TryCreateSource(string serviceName, [NotNullWhen(true)] out IEndpointSource? source)
    {
        var options = _options.CurrentValue;
        // Only the Endpoints key declares a service here: the same section also carries per-service settings
        // (OutlierDetection, HealthChecks, CircuitBreaker) of services that another source serves.
        var compatible = ConfigurationEndpointSource.CompatibilityPath(options, serviceName);
        var exists = _configuration.GetSection(options.SectionName).GetSection(serviceName).GetSection("Endpoints").Exists()
                     || (compatible is not null && _configuration.GetSection(compatible).Exists());
        source = exists ? new ConfigurationEndpointSource(serviceName, _configuration, options, _timeProvider, _logger) : null;
        return exists;
    }
}
