using System.CommandLine;
using Lodestar.DependencyInjection;
using Lodestar.Kubernetes;
using Lodestar.Registration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Cli.Sources;

/// <summary>The Kubernetes EndpointSlice source: kubeconfig (or in-cluster) credentials, a namespace and a port name.</summary>
internal sealed class KubernetesCliSource : ICliSource
{
    private static readonly Option<string?> s_kubeconfig = new("--kubeconfig")
    {
        Description = "Kubernetes: kubeconfig file. Default: in-cluster configuration in a pod, else KUBECONFIG or ~/.kube/config.",
    };

    private static readonly Option<string?> s_context = new("--context") { Description = "Kubernetes: kubeconfig context. Default: current-context." };

    private static readonly Option<string?> s_namespace = new("--namespace", "-n")
    {
        Description = "Kubernetes: namespace of plain service names. Default: the context's or pod's namespace, else default.",
    };

    private static readonly Option<string?> s_portName = new("--port-name") { Description = "Kubernetes: EndpointSlice port name. Default: the only port." };

    public string Name => "kubernetes";

    public IReadOnlyList<Option> ResolveOptions => [s_kubeconfig, s_context, s_namespace, s_portName];

    public IReadOnlyList<Option> RegisterOptions => [];

    public bool CanRegister => false;

    public void Configure(ILodestarBuilder builder, ParseResult parseResult)
    {
        var kubeconfig = parseResult.GetValue(s_kubeconfig);
        var context = parseResult.GetValue(s_context);
        var ns = parseResult.GetValue(s_namespace);
        var portName = parseResult.GetValue(s_portName);
        builder.AddKubernetes(o =>
        {
            o.KubeconfigPath = kubeconfig is null ? o.KubeconfigPath : Path.GetFullPath(kubeconfig);
            o.Context = context ?? o.Context;
            o.Namespace = ns ?? o.Namespace;
            o.PortName = portName ?? o.PortName;
        });
    }

    public void Check(IServiceProvider services, CliConsole console)
    {
        var options = services.GetRequiredService<IOptionsMonitor<KubernetesSourceOptions>>().CurrentValue;
        var inCluster = string.IsNullOrEmpty(options.KubeconfigPath) && string.IsNullOrEmpty(options.Context)
                        && !string.IsNullOrEmpty(console.Environment("KUBERNETES_SERVICE_HOST"));
        if (inCluster)
        {
            return;
        }

        // kubectl's order: the explicit file, else every file of KUBECONFIG, else ~/.kube/config.
        IReadOnlyList<string> paths = !string.IsNullOrEmpty(options.KubeconfigPath)
            ? [options.KubeconfigPath]
            : console.Environment("KUBECONFIG") is { Length: > 0 } list
                ? list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                : [Path.Combine(console.Environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".kube", "config")];
        if (!paths.Any(File.Exists))
        {
            throw new CliException($"No kubeconfig found (looked for {string.Join(", ", paths)}). Give --kubeconfig, set KUBECONFIG, or run in a pod.");
        }
    }

    public IEnumerable<string?> Secrets(IServiceProvider services) => [];

    public string LeftBehind(IServiceProvider services, ServiceRegistration registration) => throw new NotSupportedException();
}
