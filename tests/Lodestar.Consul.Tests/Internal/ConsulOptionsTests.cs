using System.ComponentModel;
using Lodestar.Consul.Internal;
using Lodestar.Consul.Registration.Internal;
using Lodestar.Discovery;
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
    public void AddConsul_BackoffAndMaxResponseBytesInConfiguration_BindUnderTheConsulSection()
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["Lodestar:Consul:Backoff:InitialDelay"] = "00:00:00.250",
            ["Lodestar:Consul:Backoff:MaxDelay"] = "00:00:05",
            ["Lodestar:Consul:Backoff:ResetAfter"] = "00:01:00",
            ["Lodestar:Consul:MaxResponseBytes"] = "1048576",
        });

        Assert.Equal(TimeSpan.FromMilliseconds(250), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(5), options.Backoff.MaxDelay);
        Assert.Equal(TimeSpan.FromMinutes(1), options.Backoff.ResetAfter);
        Assert.Equal(1048576, options.MaxResponseBytes);
    }

    [Fact]
    public void AddConsul_Defaults_AreCoreBackoffAndA64MiBAnswerLimit()
    {
        var options = Bind([]);

        Assert.Equal(BackoffOptions.DefaultInitialDelay, options.Backoff.InitialDelay);
        Assert.Equal(BackoffOptions.DefaultMaxDelay, options.Backoff.MaxDelay);
        Assert.Equal(BackoffOptions.DefaultResetAfter, options.Backoff.ResetAfter);
        Assert.Equal(64L * 1024 * 1024, options.MaxResponseBytes);
    }

#pragma warning disable CS0618 // The obsolete aliases are what these tests are about.
    [Fact]
    public void AddConsul_ObsoleteRetryKeysInConfiguration_StillBindIntoBackoff()
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["Lodestar:Consul:RetryInitialDelay"] = "00:00:00.300",
            ["Lodestar:Consul:RetryMaxDelay"] = "00:00:07",
        });

        Assert.Equal(TimeSpan.FromMilliseconds(300), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(7), options.Backoff.MaxDelay);
        Assert.Equal(options.Backoff.InitialDelay, options.RetryInitialDelay);
        Assert.Equal(options.Backoff.MaxDelay, options.RetryMaxDelay);
    }

    [Fact]
    public void AddConsul_ObsoleteAndNewKeysBothSet_NewKeysWin()
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["Lodestar:Consul:RetryInitialDelay"] = "00:00:00.300",
            ["Lodestar:Consul:Backoff:InitialDelay"] = "00:00:00.100",
            ["Lodestar:Consul:RetryMaxDelay"] = "00:00:07",
            ["Lodestar:Consul:Backoff:MaxDelay"] = "00:00:02",
        });

        Assert.Equal(TimeSpan.FromMilliseconds(100), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(2), options.Backoff.MaxDelay);
    }

    [Fact]
    public void RetryInitialDelayAndRetryMaxDelay_SetInCode_ForwardToBackoff()
    {
        var options = new ConsulOptions { RetryInitialDelay = TimeSpan.FromMilliseconds(40), RetryMaxDelay = TimeSpan.FromSeconds(3) };

        Assert.Equal(TimeSpan.FromMilliseconds(40), options.Backoff.InitialDelay);
        Assert.Equal(TimeSpan.FromSeconds(3), options.Backoff.MaxDelay);
    }

    [Fact]
    public void ObsoleteAliases_AreHiddenFromEditors()
    {
        foreach (var name in new[] { nameof(ConsulOptions.RetryInitialDelay), nameof(ConsulOptions.RetryMaxDelay) })
        {
            var property = typeof(ConsulOptions).GetProperty(name)!;
            Assert.NotNull(property.GetCustomAttributes(typeof(ObsoleteAttribute), false).SingleOrDefault());
            var browsable = Assert.IsType<EditorBrowsableAttribute>(property.GetCustomAttributes(typeof(EditorBrowsableAttribute), false).Single());
            Assert.Equal(EditorBrowsableState.Never, browsable.State);
        }
    }
#pragma warning restore CS0618

    [Fact]
    public async Task AddConsul_InvalidBackoffOrAnswerLimit_FailsAtStartupNamingTheSetting()
    {
        var builder = Host.CreateEmptyApplicationBuilder(null);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Lodestar:Consul:Backoff:InitialDelay"] = "00:00:10",
            ["Lodestar:Consul:Backoff:MaxDelay"] = "00:00:01",
            ["Lodestar:Consul:MaxResponseBytes"] = "100",
        });
        builder.Services.AddLodestarCore().AddConsul();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Lodestar:Consul:Backoff:MaxDelay must be at least InitialDelay", error.Message, StringComparison.Ordinal);
        Assert.Contains("ConsulOptions.MaxResponseBytes is 100", error.Message, StringComparison.Ordinal);
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

    private static ConsulOptions Bind(Dictionary<string, string?> values)
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
        services.AddLodestarCore().AddConsul();
        using var provider = services.BuildServiceProvider();
        return provider.GetRequiredService<IOptions<ConsulOptions>>().Value;
    }
}
