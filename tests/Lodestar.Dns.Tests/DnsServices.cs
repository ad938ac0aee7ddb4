using Lodestar;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Dns.Tests;

internal static class DnsServices
{
    /// <summary>A provider with Lodestar core and the DNS source pointed at <paramref name="server"/> as the default source.</summary>
    public static ServiceProvider Build(string server, Action<DnsSourceOptions>? configure = null, Action<IServiceCollection>? more = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLodestarCore().AddDns(o =>
        {
            o.Servers.Add(server);
            o.SearchDomains = [];
            o.Timeout = TimeSpan.FromSeconds(1);
            o.Attempts = 2;
            o.RetryDelay = TimeSpan.FromMilliseconds(200);
            o.MaxRetryDelay = TimeSpan.FromSeconds(1);
            configure?.Invoke(o);
        });
        services.Configure<LodestarOptions>(o => o.DefaultSource = "dns");
        more?.Invoke(services);
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
    }
}
