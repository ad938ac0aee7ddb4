using Lodestar;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Dns.Tests;

internal static class DnsServices
{
    /// <summary>
    /// A provider with Lodestar (<c>AddLodestar().AddDns()</c>) and the DNS source pointed at <paramref name="server"/> as
    /// the default source, on <paramref name="clock"/> when given.
    /// </summary>
    public static ServiceProvider Build(string server, Action<DnsSourceOptions>? configure = null, Action<IServiceCollection>? more = null, TimeProvider? clock = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        if (clock is not null)
        {
            services.AddSingleton(clock);
        }

        services.AddLodestar().AddDns(o =>
        {
            o.Servers.Add(server);
            o.SearchDomains = [];
            o.Timeout = TimeSpan.FromSeconds(1);
            o.Attempts = 2;
            o.Backoff.InitialDelay = TimeSpan.FromMilliseconds(200);
            o.Backoff.MaxDelay = TimeSpan.FromSeconds(1);
            configure?.Invoke(o);
        });
        services.Configure<LodestarOptions>(o => o.DefaultSource = "dns");
        more?.Invoke(services);
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
    }
}
