using Microsoft.Extensions.Configuration;

namespace Lodestar.Cli.Demo;

/// <summary>The demo's embedded configuration: its service's endpoints, replaced as instances come and go.</summary>
internal sealed class DemoConfigurationSource : IConfigurationSource
{
    public DemoConfigurationProvider Provider { get; } = new();

    public IConfigurationProvider Build(IConfigurationBuilder builder) => Provider;
}

internal sealed class DemoConfigurationProvider : ConfigurationProvider
{
    /// <summary>Declares the service's endpoints and raises a reload, as an edited appsettings.json would.</summary>
    public void SetEndpoints(string service, IEnumerable<string> urls)
    {
        Data = urls.Select((url, i) => new KeyValuePair<string, string?>($"Lodestar:Services:{service}:Endpoints:{i}", url))
            .ToDictionary(StringComparer.OrdinalIgnoreCase);
        OnReload();
    }
}
