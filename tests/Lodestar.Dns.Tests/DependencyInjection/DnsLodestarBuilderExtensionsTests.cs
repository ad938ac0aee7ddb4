using Lodestar.Discovery;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Dns.Tests.DependencyInjection;

public sealed class DnsLodestarBuilderExtensionsTests
{
    [Fact]
    public void AddDns_NullBuilder_Throws()
        => Assert.Throws<ArgumentNullException>(() => DnsLodestarBuilderExtensions.AddDns(null!));

    [Fact]
    public void AddDns_CalledTwice_RegistersOneProvider()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddLodestarCore().AddDns().AddDns();
        using var provider = services.BuildServiceProvider();

        Assert.Single(provider.GetServices<IEndpointSourceProvider>(), p => p.Name == "dns");
    }

    [Fact]
    public void AddDns_ConfigurationSection_BindsOptions()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Lodestar:Dns:Servers:0"] = "127.0.0.1:5353",
            ["Lodestar:Dns:Ndots"] = "5",
            ["Lodestar:Dns:DefaultPort"] = "8080",
            ["Lodestar:Dns:MinTtl"] = "00:00:02",
            ["Lodestar:Dns:SrvNames:orders"] = "_http._tcp.orders.shop.svc.cluster.local",
        }).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
        services.AddLodestarCore().AddDns(o => o.Attempts = 3);
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<DnsSourceOptions>>().Value;

        Assert.Equal(["127.0.0.1:5353"], options.Servers);
        Assert.Equal(5, options.Ndots);
        Assert.Equal(3, options.Attempts);
        Assert.Equal(8080, options.DefaultPort);
        Assert.Equal(TimeSpan.FromSeconds(2), options.MinTtl);
        Assert.Equal("_http._tcp.orders.shop.svc.cluster.local", options.SrvNames["orders"]);
    }

    [Fact]
    public void AddDns_InvalidOptions_FailsStartupValidationNamingEachProperty()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddLodestarCore().AddDns(o =>
        {
            o.Servers.Add("dns.example:53");
            o.MinTtl = TimeSpan.Zero;
            o.DefaultPort = 0;
            o.UdpPayloadSize = 100;
        });
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(error.Failures, f => f.Contains("DnsSourceOptions.Servers", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("DnsSourceOptions.MinTtl", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("DnsSourceOptions.DefaultPort", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.Contains("DnsSourceOptions.UdpPayloadSize", StringComparison.Ordinal));
    }
}
