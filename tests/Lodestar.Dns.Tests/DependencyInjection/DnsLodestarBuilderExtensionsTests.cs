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

    [Fact]
    public void AddDns_BackoffSection_BindsBackoff()
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["Lodestar:Dns:Backoff:InitialDelay"] = "00:00:02",
            ["Lodestar:Dns:Backoff:MaxDelay"] = "00:01:00",
            ["Lodestar:Dns:Backoff:ResetAfter"] = "00:10:00",
        });

        Assert.Equal(TimeSpan.FromSeconds(2), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromMinutes(1), options.Backoff.MaxDelay);
        Assert.Equal(TimeSpan.FromMinutes(10), options.Backoff.ResetAfter);
    }

    [Fact]
    public void AddDns_NoBackoffSettings_UsesClientGoDefaults()
    {
        var options = Bind([]);

        Assert.Equal(TimeSpan.FromMilliseconds(800), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Backoff.MaxDelay);
        Assert.Equal(TimeSpan.FromMinutes(2), options.Backoff.ResetAfter);
    }

    [Fact]
    public void AddDns_ObsoleteRetryDelayKeys_StillBindIntoBackoff()
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["Lodestar:Dns:RetryDelay"] = "00:00:03",
            ["Lodestar:Dns:MaxRetryDelay"] = "00:00:45",
        });

        Assert.Equal(TimeSpan.FromSeconds(3), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(45), options.Backoff.MaxDelay);
    }

    [Fact]
    public void AddDns_ObsoleteKeysAndBackoffBothSet_BackoffWins()
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["Lodestar:Dns:RetryDelay"] = "00:00:03",
            ["Lodestar:Dns:MaxRetryDelay"] = "00:00:45",
            ["Lodestar:Dns:Backoff:InitialDelay"] = "00:00:01",
            ["Lodestar:Dns:Backoff:MaxDelay"] = "00:00:20",
        });

        Assert.Equal(TimeSpan.FromSeconds(1), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(20), options.Backoff.MaxDelay);
    }

    [Fact]
    public void RetryDelayAndMaxRetryDelay_SetInCode_ForwardToBackoff()
    {
        var options = new DnsSourceOptions();
#pragma warning disable CS0618 // The obsolete aliases are what is under test.
        options.RetryDelay = TimeSpan.FromSeconds(4);
        options.MaxRetryDelay = TimeSpan.FromSeconds(40);

        Assert.Equal(TimeSpan.FromSeconds(4), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(40), options.Backoff.MaxDelay);
        options.Backoff.InitialDelay = TimeSpan.FromSeconds(5);
        Assert.Equal(TimeSpan.FromSeconds(5), options.RetryDelay);
#pragma warning restore CS0618
    }

    [Fact]
    public void AddDns_InvalidBackoff_FailsStartupValidationNamingTheSetting()
    {
        var services = new ServiceCollection().AddLogging();
        services.AddLodestarCore().AddDns(o =>
        {
            o.Backoff.InitialDelay = TimeSpan.FromSeconds(10);
            o.Backoff.MaxDelay = TimeSpan.FromSeconds(5);
        });
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IStartupValidator>().Validate());

        Assert.Contains(error.Failures, f => f.StartsWith("Lodestar:Dns:Backoff:MaxDelay must be at least InitialDelay", StringComparison.Ordinal));
    }

    private static DnsSourceOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection().AddLogging().AddSingleton<IConfiguration>(configuration);
        services.AddLodestarCore().AddDns();
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<DnsSourceOptions>>().Value;
    }
}
