using Lodestar.Discovery;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Xds.Tests.DependencyInjection;

public sealed class AddXdsTests
{
    private const string Bootstrap = """{ "xds_servers": [ { "server_uri": "127.0.0.1:18000", "channel_creds": [ { "type": "insecure" } ] } ] }""";

    [Fact]
    public void AddXds_Twice_RegistersTheSourceOnce()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddLodestar().AddXds().AddXds();
        using var provider = services.BuildServiceProvider();

        Assert.Single(provider.GetServices<IEndpointSourceProvider>(), p => p.Name == XdsLodestarBuilderExtensions.SourceName);
    }

    [Fact]
    public void AddXds_Configuration_BindsTheSectionIncludingBackoff()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Lodestar:Xds:BootstrapJson"] = Bootstrap,
            ["Lodestar:Xds:UseDelta"] = "true",
            ["Lodestar:Xds:ResourceDoesNotExistTimeout"] = "00:00:30",
            ["Lodestar:Xds:Backoff:InitialDelay"] = "00:00:02",
        }).Build());
        services.AddLodestar().AddXds();
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptions<XdsOptions>>().Value;

        Assert.True(options.UseDelta);
        Assert.Equal(TimeSpan.FromSeconds(30), options.ResourceDoesNotExistTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), options.Backoff.InitialDelay);
    }

    [Fact]
    public void AddXds_BadBootstrapFile_FailsValidationNamingTheFileAndField()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, """{ "xds_servers": [ { "server_uri": "127.0.0.1:18000", "channel_creds": [ { "type": "google_default" } ] } ] }""");
            var services = new ServiceCollection();
            services.AddLodestar().AddXds(o => o.BootstrapPath = file);
            using var provider = services.BuildServiceProvider();

            var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<XdsOptions>>().Value);

            Assert.Contains($"xDS bootstrap (file '{file}'): xds_servers[0].channel_creds[0].type 'google_default' is not supported here", error.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void AddXds_TokenToARemoteServerWithoutTls_FailsValidation()
    {
        var services = new ServiceCollection();
        services.AddLodestar().AddXds(o =>
        {
            o.BootstrapJson = """{ "xds_servers": [ { "server_uri": "istiod.istio-system.svc:15010", "channel_creds": [ { "type": "insecure" } ] } ] }""";
            o.TokenPath = "/var/run/secrets/tokens/istio-token";
        });
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<XdsOptions>>().Value);

        Assert.Contains("a token is sent only over 'tls' channel credentials, a unix socket or a loopback address", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddXds_TokenToARemoteFallbackServerWithoutTls_FailsValidationNamingIt()
    {
        // The primary is on loopback (a token may go there); the fallback is remote and in clear text.
        var services = new ServiceCollection();
        services.AddLodestar().AddXds(o =>
        {
            o.BootstrapJson = """
                { "xds_servers": [
                    { "server_uri": "127.0.0.1:15010", "channel_creds": [ { "type": "insecure" } ] },
                    { "server_uri": "istiod-backup.istio-system.svc:15010", "channel_creds": [ { "type": "insecure" } ] } ] }
                """;
            o.TokenPath = "/var/run/secrets/tokens/istio-token";
        });
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<XdsOptions>>().Value);

        Assert.Contains("xDS server 'istiod-backup.istio-system.svc:15010': a token is sent only over 'tls'", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1:15010", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddXds_OutOfRangeOptions_FailValidationNamingThem()
    {
        var services = new ServiceCollection();
        services.AddLodestar().AddXds(o =>
        {
            o.BootstrapJson = Bootstrap;
            o.ResourceDoesNotExistTimeout = TimeSpan.Zero;
            o.Backoff.MaxDelay = TimeSpan.FromMilliseconds(1);
        });
        using var provider = services.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<XdsOptions>>().Value);

        Assert.Contains("Lodestar:Xds:ResourceDoesNotExistTimeout", error.Message, StringComparison.Ordinal);
        Assert.Contains("Lodestar:Xds:Backoff:MaxDelay", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddXds_NullBuilder_Throws()
        => Assert.Throws<ArgumentNullException>(() => XdsLodestarBuilderExtensions.AddXds(null!));
}
