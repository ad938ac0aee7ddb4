using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Benchmarks.Http;

/// <summary>The services of the benchmarks whose clients end in a transport of their own instead of the network.</summary>
internal static class NoNetworkServices
{
    /// <summary>The logical service every such client calls (<c>http://svc</c>).</summary>
    public const string Service = "svc";

    /// <summary>
    /// A service collection with logging and configuration naming five endpoints of <see cref="Service"/>
    /// (127.0.0.1:5000 to 5004), for Lodestar's configuration source and Microsoft.Extensions.ServiceDiscovery's; no
    /// request reaches them.
    /// </summary>
    public static ServiceCollection Create()
    {
        var settings = new List<KeyValuePair<string, string?>>();
        for (var i = 0; i < 5; i++)
        {
            settings.Add(new($"Lodestar:Services:{Service}:Endpoints:{i}", $"http://127.0.0.1:{5000 + i}"));
            settings.Add(new($"Services:{Service}:http:{i}", $"127.0.0.1:{5000 + i}"));
        }

        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        services.AddLogging();
        return services;
    }
}
