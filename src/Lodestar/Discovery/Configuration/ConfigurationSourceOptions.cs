namespace Lodestar.Discovery.Configuration;

/// <summary>Options of the configuration endpoint source.</summary>
public sealed class ConfigurationSourceOptions
{
    /// <summary>
    /// Gets or sets the section holding Lodestar's own service declarations, each as
    /// <c>{Section}:{service}:Endpoints</c>, a list of addresses or objects. Default <c>Lodestar:Services</c>.
    /// </summary>
    public string SectionName { get; set; } = "Lodestar:Services";

    /// <summary>
    /// Gets or sets the section read in the shape Microsoft.Extensions.ServiceDiscovery uses
    /// (<c>Services:{service}:{http|https}:{index}</c>), so existing configuration works unchanged; <see langword="null"/>
    /// or empty turns it off. Default <c>Services</c>. A named endpoint, written as that library writes it
    /// (<c>https+http://_grpc.orders</c>, service name <c>_grpc.orders</c>), reads <c>Services:orders:grpc</c>: one address
    /// or a list of them.
    /// </summary>
    public string? CompatibilitySectionName { get; set; } = "Services";
}
