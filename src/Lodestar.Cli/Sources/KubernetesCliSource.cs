using System.CommandLine;
using Lodestar.DependencyInjection;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Sources;

/// <summary>The Kubernetes EndpointSlice source: kubeconfig (or in-cluster) credentials, a namespace and a port name.</summary>
internal sealed class KubernetesCliSource : ICliSource
{
    private static readonly Option<FileInfo?> s_kubeconfig = new("--kubeconfig")
    {
        Description = "Kubernetes: kubeconfig file. Default: in-cluster configuration in a pod, else KUBECONFIG or ~/.kube/config.",
    };

    private static readonly Option<string?> s_context = new("--context") { Description = "Kubernetes: kubeconfig context. Default: current-context." };

    private static readonly Option<string?> s_namespace = new("--namespace")
    {
        Description = "Kubernetes: namespace of plain service names. Default: the context's or pod's namespace, else default.",
    };

    private static readonly Option<string?> s_portName = new("--port-name") { Description = "Kubernetes: EndpointSlice port name. Default: the only port." };

    public string Name => "kubernetes";

    public IReadOnlyList<Option> Options => [s_kubeconfig, s_context, s_namespace, s_portName];

    public void Configure(ILodestarBuilder builder, ParseResult parseResult)
    {
        var kubeconfig = parseResult.GetValue(s_kubeconfig);
        var context = parseResult.GetValue(s_context);
        var ns = parseResult.GetValue(s_namespace);
        var portName = parseResult.GetValue(s_portName);
        builder.AddKubernetes(o =>
        {
            o.KubeconfigPath = kubeconfig?.FullName ?? o.KubeconfigPath;
            o.Context = context ?? o.Context;
            o.Namespace = ns ?? o.Namespace;
            o.PortName = portName ?? o.PortName;
        });
    }
}
