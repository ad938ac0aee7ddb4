using System.Diagnostics.CodeAnalysis;
using System.Net;
using Lodestar.Discovery;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.ServiceDiscovery;

namespace Lodestar.ServiceDiscovery.Internal;

/// <summary>
/// Offers Lodestar's sources to Microsoft.Extensions.ServiceDiscovery: a query is accepted when a Lodestar source
/// serves its service, and left to the library's other providers otherwise.
/// </summary>
internal sealed partial class LodestarServiceEndpointProviderFactory : IServiceEndpointProviderFactory
{
    private readonly IEndpointResolver _resolver;
    private readonly ILogger _logger;

    public LodestarServiceEndpointProviderFactory(IEndpointResolver resolver, ILogger<LodestarServiceEndpointProviderFactory> logger)
    {
        _resolver = resolver;
        _logger = logger;
    }

    /// <inheritdoc/>
    public bool TryCreateProvider(ServiceEndpointQuery query, [NotNullWhen(true)] out IServiceEndpointProvider? provider)
    {
        ArgumentNullException.ThrowIfNull(query);
        provider = null;
        var serviceName = ToServiceName(query);
        if (serviceName is null)
        {
            return false;
        }

        try
        {
            provider = new LodestarServiceEndpointProvider(serviceName, query.IncludedSchemes, _resolver);
            return true;
        }
        catch (EndpointResolutionException ex)
        {
            // No Lodestar source serves the service: the library's next provider (configuration, pass-through) may.
            Log.NotServed(_logger, serviceName, ex.Message);
            return false;
        }
    }

    /// <summary>
    /// Gets the Lodestar service name for a query: the service name, or for a named endpoint <c>_{endpoint}.{service}</c>,
    /// the form Lodestar's configuration source reads as <c>Services:{service}:{endpoint}</c>. IP literals and
    /// <c>localhost</c> are not services; <see langword="null"/> leaves them to the pass-through provider.
    /// </summary>
    internal static string? ToServiceName(ServiceEndpointQuery query)
    {
        var service = query.ServiceName;
        if (string.IsNullOrEmpty(service) || IPAddress.TryParse(service.Trim('[', ']'), out _)
            || string.Equals(service, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return string.IsNullOrEmpty(query.EndpointName) ? service : string.Concat("_", query.EndpointName, ".", service);
    }

    private static partial class Log
    {
        [LoggerMessage(1200, LogLevel.Debug, "No Lodestar source serves '{Service}'; leaving it to the next endpoint provider: {Reason}", EventName = "ServiceNotServed")]
        public static partial void NotServed(ILogger logger, string service, string reason);
    }
}
