using Lodestar.Xds.Bootstrap;
using Lodestar.Xds.Bootstrap.Internal;

namespace Lodestar.Xds.Tests.Bootstrap;

public sealed class XdsBootstrapParserTests
{
    /// <summary>The shape of the bootstrap Istio's agent writes for a proxyless gRPC workload.</summary>
    private const string IstioBootstrap = """
        {
          "xds_servers": [
            {
              "server_uri": "unix:///etc/istio/proxy/XDS",
              "channel_creds": [ { "type": "insecure" } ],
              "server_features": [ "xds_v3" ]
            }
          ],
          "node": {
            "id": "sidecar~10.244.0.36~echo-v1-5c9b8d9f7-abcde.echo-grpc~echo-grpc.svc.cluster.local",
            "metadata": {
              "ANNOTATIONS": { "inject.istio.io/templates": "grpc-agent", "proxy.istio.io/config": "{\"holdApplicationUntilProxyStarts\": true}" },
              "APP_CONTAINERS": "app",
              "CLUSTER_ID": "Kubernetes",
              "ENVOY_PROMETHEUS_PORT": 15090,
              "GENERATOR": "grpc",
              "ISTIO_VERSION": "1.24.0",
              "LABELS": { "app": "echo", "version": "v1" },
              "MESH_ID": "cluster.local",
              "NAMESPACE": "echo-grpc",
              "SERVICE_ACCOUNT": "default"
            },
            "locality": { "region": "us-central1", "zone": "us-central1-a" },
            "UserAgentVersionType": null
          },
          "certificate_providers": {
            "default": {
              "plugin_name": "file_watcher",
              "config": {
                "certificate_file": "/var/lib/istio/data/cert-chain.pem",
                "private_key_file": "/var/lib/istio/data/key.pem",
                "ca_certificate_file": "/var/lib/istio/data/root-cert.pem",
                "refresh_interval": "900s"
              }
            }
          },
          "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s"
        }
        """;

    [Fact]
    public void Parse_IstioProxylessBootstrap_ReadsUnixSocketNodeAndLocality()
    {
        var bootstrap = XdsBootstrapParser.Parse(IstioBootstrap, "file '/etc/istio/proxy/grpc-bootstrap.json'");

        var server = Assert.Single(bootstrap.Servers);
        Assert.Equal("/etc/istio/proxy/XDS", server.UnixSocketPath);
        Assert.Null(server.Authority);
        Assert.False(server.UseTls);
        Assert.Equal(["xds_v3"], server.ServerFeatures);
        Assert.False(server.IgnoreResourceDeletion);
        Assert.StartsWith("sidecar~10.244.0.36~", bootstrap.Node.Id, StringComparison.Ordinal);
        Assert.Equal("us-central1", bootstrap.Node.Region);
        Assert.Equal("us-central1-a", bootstrap.Node.Zone);
        Assert.Equal("grpc", bootstrap.Node.Metadata!.Fields["GENERATOR"].StringValue);
        Assert.Equal("v1", bootstrap.Node.Metadata.Fields["LABELS"].StructValue.Fields["version"].StringValue);
        Assert.Equal(15090, bootstrap.Node.Metadata.Fields["ENVOY_PROMETHEUS_PORT"].NumberValue);
    }

    [Fact]
    public void Parse_GrpcGoBootstrap_ReadsServerFeaturesAndTarget()
    {
        const string Json = """
            {
              "xds_servers": [
                { "server_uri": "dns:///xds.example.com:18000", "channel_creds": [ { "type": "fancy" }, { "type": "insecure" } ],
                  "server_features": [ "xds_v3", "ignore_resource_deletion" ] },
                { "server_uri": "backup.example.com", "channel_creds": [ { "type": "insecure" } ] }
              ],
              "node": { "id": "node-1", "cluster": "c1", "locality": { "region": "r", "zone": "z", "sub_zone": "s" } },
              "authorities": { }
            }
            """;

        var bootstrap = XdsBootstrapParser.Parse(Json, "GRPC_XDS_BOOTSTRAP_CONFIG");

        Assert.Equal(2, bootstrap.Servers.Count);
        Assert.Equal("xds.example.com:18000", bootstrap.Servers[0].Authority);
        Assert.True(bootstrap.Servers[0].IgnoreResourceDeletion);
        Assert.Equal("backup.example.com:443", bootstrap.Servers[1].Authority);
        Assert.Equal(("node-1", "c1", "s"), (bootstrap.Node.Id, bootstrap.Node.Cluster, bootstrap.Node.SubZone));
    }

    [Fact]
    public void Parse_GoogleDefaultCredentials_FailsSayingTheyAreNotSupportedHere()
    {
        const string Json = """{ "xds_servers": [ { "server_uri": "trafficdirector.googleapis.com:443", "channel_creds": [ { "type": "google_default" }, { "type": "insecure" } ] } ] }""";

        var error = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapParser.Parse(Json, "file '/etc/td.json'"));

        Assert.Equal("xDS bootstrap (file '/etc/td.json'): xds_servers[0].channel_creds[0].type 'google_default' is not supported here; use 'insecure' or 'tls'.", error.Message);
    }

    [Theory]
    [InlineData("""{ "node": { "id": "x" } }""", "xds_servers must be a non-empty array")]
    [InlineData("""{ "xds_servers": [ { "channel_creds": [ { "type": "insecure" } ] } ] }""", "xds_servers[0].server_uri is missing")]
    [InlineData("""{ "xds_servers": [ { "server_uri": "localhost:1" } ] }""", "xds_servers[0].channel_creds must be a non-empty array")]
    [InlineData("""{ "xds_servers": [ { "server_uri": "localhost:1", "channel_creds": [ { "type": "alts" } ] } ] }""", "xds_servers[0].channel_creds has no supported type")]
    [InlineData("""{ "xds_servers": [ { "server_uri": "localhost:99999", "channel_creds": [ { "type": "insecure" } ] } ] }""", "xds_servers[0].server_uri 'localhost:99999' has an invalid port")]
    [InlineData("""{ "xds_servers": [ { "server_uri": "unix:relative/path", "channel_creds": [ { "type": "insecure" } ] } ] }""", "must name an absolute socket path")]
    [InlineData("""{ "xds_servers": [ { "server_uri": 5, "channel_creds": [ { "type": "insecure" } ] } ] }""", "xds_servers[0].server_uri must be a string")]
    [InlineData("""{ "xds_servers": [ { "server_uri": "localhost:1", "channel_creds": [ { "type": "tls", "config": { "ca_certificate_file": "/nonexistent/ca.pem" } } ] } ] }""", "xds_servers[0].channel_creds[0].config.ca_certificate_file '/nonexistent/ca.pem' does not exist")]
    [InlineData("""{ "xds_servers": [ { "server_uri": "localhost:1", "channel_creds": [ { "type": "insecure" } ], "call_creds": [ { "type": "jwt_token_file", "config": { } } ] } ] }""", "xds_servers[0].call_creds[0].config.jwt_token_file is missing")]
    [InlineData("""{ "xds_servers": [ { "server_uri": "localhost:1", "channel_creds": [ { "type": "insecure" } ] } ], "node": { "metadata": [1] } }""", "node.metadata must be an object")]
    public void Parse_InvalidField_NamesTheFieldAndTheSource(string json, string expected)
    {
        var error = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapParser.Parse(json, "file '/etc/xds.json'"));

        Assert.StartsWith("xDS bootstrap (file '/etc/xds.json'): ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NotJson_NamesTheSourceAndPosition()
    {
        var error = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapParser.Parse("{ \"xds_servers\": [ }", "GRPC_XDS_BOOTSTRAP_CONFIG"));

        Assert.StartsWith("xDS bootstrap (GRPC_XDS_BOOTSTRAP_CONFIG): is not valid JSON (line 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_Precedence_OptionsPathThenOptionsJsonThenFileVariableThenConfigVariable()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, Bootstrap("from-file"));
            var environment = new Dictionary<string, string?>
            {
                [XdsBootstrapParser.BootstrapFileVariable] = file,
                [XdsBootstrapParser.BootstrapConfigVariable] = Bootstrap("from-config-variable"),
            };

            Assert.Equal("from-options-json", XdsBootstrapParser.Load(new XdsOptions { BootstrapJson = Bootstrap("from-options-json") }, environment.GetValueOrDefault).Node.Id);
            Assert.Equal("from-file", XdsBootstrapParser.Load(new XdsOptions { BootstrapPath = file, BootstrapJson = Bootstrap("ignored") }, _ => null).Node.Id);
            Assert.Equal("from-file", XdsBootstrapParser.Load(new XdsOptions(), environment.GetValueOrDefault).Node.Id);
            environment.Remove(XdsBootstrapParser.BootstrapFileVariable);
            Assert.Equal("from-config-variable", XdsBootstrapParser.Load(new XdsOptions(), environment.GetValueOrDefault).Node.Id);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void Load_NothingConfigured_SaysWhereABootstrapCanComeFrom()
    {
        var error = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapParser.Load(new XdsOptions(), _ => null));

        Assert.Contains("GRPC_XDS_BOOTSTRAP", error.Message, StringComparison.Ordinal);
        Assert.Contains("Lodestar:Xds:BootstrapPath", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFile_NamesThePathAndTheSetting()
    {
        var error = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapParser.Load(new XdsOptions(), v => v == "GRPC_XDS_BOOTSTRAP" ? "/nonexistent/bootstrap.json" : null));

        Assert.Equal("The xDS bootstrap file '/nonexistent/bootstrap.json' (from GRPC_XDS_BOOTSTRAP) does not exist.", error.Message);
    }

    private static string Bootstrap(string nodeId)
        => $$"""{ "xds_servers": [ { "server_uri": "127.0.0.1:18000", "channel_creds": [ { "type": "insecure" } ] } ], "node": { "id": "{{nodeId}}" } }""";
}
