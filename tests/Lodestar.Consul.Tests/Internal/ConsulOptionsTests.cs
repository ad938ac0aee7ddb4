using Lodestar.Consul.Internal;
using Lodestar.Consul.Registration.Internal;
using Lodestar.Registration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Lodestar.Consul.Tests.Internal;

public sealed class ConsulOptionsTests
{
    [Fact]
    public void PostConfigure_NothingSet_FillsFromConsulEnvironmentVariables()
    {
        var environment = new Dictionary<string, string?>
        {
            ["CONSUL_HTTP_ADDR"] = "consul.local:8501",
            ["CONSUL_HTTP_SSL"] = "true",
            ["CONSUL_HTTP_TOKEN"] = " from-env \n",
        };
        var options = new ConsulOptions();

        new ConsulEnvironmentPostConfigure(k => environment.GetValueOrDefault(k)).PostConfigure(null, options);

        Assert.Equal("https://consul.local:8501", options.Address);
        Assert.Equal("from-env", options.Token);
    }

    [Fact]
    public void PostConfigure_ExplicitSettings_WinOverEnvironment()
    {
        var options = new ConsulOptions { Address = "http://10.0.0.1:8500", Token = "mine" };

        new ConsulEnvironmentPostConfigure(_ => "http://elsewhere:1").PostConfigure(null, options);

        Assert.Equal("http://10.0.0.1:8500", options.Address);
        Assert.Equal("mine", options.Token);
    }

    [Fact]
    public void PostConfigure_NoEnvironment_UsesDefaultAddress()
    {
        var options = new ConsulOptions();

        new ConsulEnvironmentPostConfigure(_ => null).PostConfigure(null, options);

        Assert.Equal(ConsulOptions.DefaultAddress, options.Address);
        Assert.Null(options.Token);
    }

    [Fact]
    public async Task AddConsul_InvalidOptions_FailsAtStartupNamingEachSetting()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Lodestar:Consul:Address"] = "ftp://nope",
            ["Lodestar:Consul:WaitTime"] = "00:20:00",
            ["Lodestar:Consul:MinQueryInterval"] = "00:00:00",
            ["Lodestar:Consul:Token"] = "never-echo-this\n",
        });
        builder.Services.AddLodestarCore().AddConsul();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("ConsulOptions.Address", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConsulOptions.WaitTime", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConsulOptions.MinQueryInterval", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConsulOptions.Token", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("never-echo-this", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddConsul_ConfigurationSection_BindsThenCodeWins()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Lodestar:Consul:Address"] = "http://10.1.1.1:8500",
            ["Lodestar:Consul:Datacenter"] = "eu",
            ["Lodestar:Consul:Tags:0"] = "v2",
        }).Build());
        services.AddLodestarCore().AddConsul(o => o.Datacenter = "us");
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<ConsulOptions>>().Value;

        Assert.Equal("http://10.1.1.1:8500", options.Address);
        Assert.Equal("us", options.Datacenter);
        Assert.Equal(["v2"], options.Tags);
    }

    [Fact]
    public void CreateBody_TtlAndHttpChecks_CarryConsulFields()
    {
        var options = new ConsulOptions { DeregisterCriticalServiceAfter = TimeSpan.FromSeconds(90), HttpCheckInterval = TimeSpan.FromMilliseconds(1500) };
        var ttl = ConsulServiceRegistrar.CreateBody(new ServiceRegistration { ServiceName = "orders", Host = "::1", Port = 80, Ttl = TimeSpan.FromSeconds(15) }, options);
        var http = ConsulServiceRegistrar.CreateBody(new ServiceRegistration { ServiceName = "orders", Host = "::1", Port = 80, Scheme = "https", HealthCheckPath = "healthz" }, options);

        Assert.Equal("orders-::1-80", ttl.ID);
        Assert.Equal("15s", ttl.Check!.TTL);
        Assert.Equal("service:orders-::1-80", ttl.Check.CheckID);
        Assert.Equal("passing", ttl.Check.Status);
        Assert.Equal("90s", ttl.Check.DeregisterCriticalServiceAfter);
        Assert.Equal("https://[::1]:80/healthz", http.Check!.HTTP);
        Assert.Equal("1500ms", http.Check.Interval);
        Assert.Null(http.Check.TTL);
        Assert.Equal("https", http.Meta!["scheme"]);
    }
}
